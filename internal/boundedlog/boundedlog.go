package boundedlog

import (
	"context"
	"slices"
	"strings"
)

// Names returns the names of the entries under prefix among keys (the
// cluster view's extra keys, named relative to the cluster prefix), oldest
// first.
func Names[V any](keys map[string]V, prefix string) []string {
	var names []string
	for key := range keys {
		if name, ok := strings.CutPrefix(key, prefix); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Trim removes the oldest names beyond keep, oldest first, stopping at the
// first error (etcd is likely away: the next trim resumes).
func Trim(ctx context.Context, names []string, keep int, remove func(ctx context.Context, name string) error) error {
	for len(names) > keep {
		if err := remove(ctx, names[0]); err != nil {
			return err
		}
		names = names[1:]
	}
	return nil
}
