package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
)

// TestDemoteClusterPatchesStandbyCluster: demote-cluster sends the
// standby_cluster patch to the leader and waits for the standby leader.
func TestDemoteClusterPatchesStandbyCluster(t *testing.T) {
	leader := newFakeMember(t, map[string][]answer{"PATCH /config": {{200, `{}`}}})
	c := threeMembers(map[string]string{"pg1": leader.URL}, `{"ttl":10}`)
	m := c.Members["pg1"]
	m.Role = "standby_leader" // what the fixed view shows once the leader demoted
	c.Members["pg1"] = m
	r := ctlRun{loader: fixed(c)}.run(t, "demote-cluster", "--host", "dr.example.net", "--port", "5000", "--slot", "dr", "--force")
	if r.err != nil {
		t.Fatalf("demote-cluster: %v", r.err)
	}
	want := []string{`{"standby_cluster":{"host":"dr.example.net","port":5000,"primary_slot_name":"dr"}}`}
	if d := cmp.Diff(want, leader.bodies("PATCH /config")); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if !strings.Contains(r.out, "pg1 is the standby_leader") {
		t.Errorf("output = %q", r.out)
	}
}

// TestPromoteClusterRemovesStandbyCluster: promote-cluster deletes the key
// (null in the merge patch).
func TestPromoteClusterRemovesStandbyCluster(t *testing.T) {
	leader := newFakeMember(t, map[string][]answer{"PATCH /config": {{200, `{}`}}})
	c := threeMembers(map[string]string{"pg1": leader.URL}, `{"standby_cluster":{"host":"a.example.net"}}`)
	r := ctlRun{loader: fixed(c)}.run(t, "promote-cluster", "--force")
	if r.err != nil {
		t.Fatalf("promote-cluster: %v", r.err)
	}
	if d := cmp.Diff([]string{`{"standby_cluster":null}`}, leader.bodies("PATCH /config")); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}

// TestClusterRoleRefusals: nothing is sent for a wrong cluster (exit 1)
// or a bad flag (exit 2, a usage error).
func TestClusterRoleRefusals(t *testing.T) {
	primary := threeMembers(nil, `{"ttl":10}`)
	standby := threeMembers(nil, `{"standby_cluster":{"host":"a.example.net"}}`)
	for _, tt := range []struct {
		name string
		c    *dcs.Cluster
		args []string
		want string
		code int
	}{
		{"promote a primary cluster", primary, []string{"promote-cluster", "--force"}, "is not a standby cluster", exitFailed},
		{"demote a standby cluster", standby, []string{"demote-cluster", "--host", "h", "--force"}, "already a standby cluster", exitFailed},
		{"demote without a host", primary, []string{"demote-cluster", "--force"}, "--host (or --restore-command) is required", exitUsage},
		{"demote to a bad port", primary, []string{"demote-cluster", "--host", "h", "--port", "70000", "--force"}, "standby_cluster: port: 70000 is outside", exitUsage},
		{"demote to a bad slot", primary, []string{"demote-cluster", "--host", "h", "--primary-slot-name", "Bad-Slot", "--force"}, "standby_cluster: primary_slot_name:", exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ctlRun{loader: fixed(tt.c)}.run(t, tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", r.err, tt.want)
			}
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d", r.code, tt.code)
			}
		})
	}
}
