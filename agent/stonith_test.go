package agent

import (
	"testing"

	"github.com/regent-ha/regent/dcs"
)

// TestReleasedCleanly: when fence.command may be skipped for a former
// leader. A replica member key counts only when written after the leader
// key was seen gone (an agent restarted after a clean stop); an older one
// may predate a promotion the agent froze before publishing.
func TestReleasedCleanly(t *testing.T) {
	const goneRev = 100
	view := func(state, role string, rev int64) *dcs.Cluster {
		return &dcs.Cluster{Members: map[string]dcs.Member{"pg1": {State: state, Role: role}}, MemberRevs: map[string]int64{"pg1": rev}}
	}
	for _, tt := range []struct {
		name    string
		v       *dcs.Cluster
		goneRev int64
		want    bool
	}{
		{"stopped on purpose", view("stopped", "primary", 90), goneRev, true},
		{"member key gone with its lease", &dcs.Cluster{Members: map[string]dcs.Member{}}, goneRev, false},
		{"still claims to run as primary", view("running", "primary", 120), goneRev, false},
		{"restarted agent runs it as a replica", view("running", "replica", 120), goneRev, true},
		{"restarted agent starts it as a replica", view("starting", "replica", 120), goneRev, true},
		{"replica key from before the key went", view("running", "replica", 90), goneRev, false},
		{"replica key at the very revision the absence was seen", view("running", "replica", goneRev), goneRev, false},
		{"no episode revision known", view("running", "replica", 120), 0, false},
		{"demoted after a fence, running", view("running", "demoted", 120), goneRev, false},
		{"stopping", view("stopping", "primary", 120), goneRev, false},
	} {
		if got := releasedCleanly(tt.v, "pg1", tt.goneRev); got != tt.want {
			t.Errorf("%s: releasedCleanly = %t, want %t", tt.name, got, tt.want)
		}
	}
}
