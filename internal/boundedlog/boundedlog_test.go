package boundedlog

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	keys := map[string]int{"decisions/003": 0, "decisions/001": 0, "switchovers/a": 0, "decisions": 0, "decisions/002": 0}
	if got, want := Names(keys, "decisions/"), []string{"001", "002", "003"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if got := Names(keys, "history/"); len(got) != 0 {
		t.Errorf("Names of an absent prefix = %v, want none", got)
	}
}

func TestTrim(t *testing.T) {
	errDown := errors.New("etcd away")
	for _, tt := range []struct {
		name    string
		names   []string
		keep    int
		failOn  string
		removed []string
		err     error
	}{
		{"within the bound", []string{"1", "2"}, 2, "", nil, nil},
		{"oldest first", []string{"1", "2", "3", "4"}, 2, "", []string{"1", "2"}, nil},
		{"keep none", []string{"1", "2"}, 0, "", []string{"1", "2"}, nil},
		{"stops at the first error", []string{"1", "2", "3", "4"}, 1, "2", []string{"1"}, errDown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var removed []string
			err := Trim(t.Context(), tt.names, tt.keep, func(_ context.Context, name string) error {
				if name == tt.failOn {
					return errDown
				}
				removed = append(removed, name)
				return nil
			})
			if !errors.Is(err, tt.err) || !slices.Equal(removed, tt.removed) {
				t.Errorf("Trim removed %v, err %v; want %v, %v", removed, err, tt.removed, tt.err)
			}
		})
	}
}
