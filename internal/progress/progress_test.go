package progress

import "testing"

func TestString(t *testing.T) {
	tests := []struct {
		p    Progress
		want string
	}{
		{Progress{Work: "creating replica", Method: "basebackup", DoneBytes: 12 << 30, TotalBytes: 32 << 30}, "creating replica 37%, 12 of 32 GB (basebackup)"},
		{Progress{Work: "creating replica", Method: "basebackup", DoneBytes: 5 << 20, TotalBytes: 20 << 20}, "creating replica 25%, 5 of 20 MB (basebackup)"},
		{Progress{Work: "creating replica", Method: "basebackup", DoneBytes: 140 << 20, TotalBytes: 1150 << 20, SecondsLeft: 60}, "creating replica 12%, 0.1 of 1.1 GB, 1 min left (basebackup)"},
		{Progress{Work: "creating replica", Method: "pgbackrest"}, "creating replica (pgbackrest)"},
		{Progress{Work: "creating replica", Method: "basebackup", DoneBytes: 12 << 30, TotalBytes: 32 << 30, SecondsLeft: 250}, "creating replica 37%, 12 of 32 GB, 4 min left (basebackup)"},
		{Progress{Work: "creating replica", Method: "basebackup", DoneBytes: 12 << 30, TotalBytes: 32 << 30, SecondsLeft: 42}, "creating replica 37%, 12 of 32 GB, 42 s left (basebackup)"},
		{Progress{Work: "creating replica", DoneBytes: 40, TotalBytes: 20}, "creating replica 100%, 0.0 of 0.0 MB"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
