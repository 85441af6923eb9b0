package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDoesNotLinkEtcdServer keeps the agent an etcd client only:
// etcd's server (raft, bbolt, the gRPC gateway) is tens of MB of binary and
// resident memory the agent never uses. Tests, benchmarks and regent-demo
// get it from internal/etcdembed.
func TestAgentDoesNotLinkEtcdServer(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		if strings.HasPrefix(dep, "go.etcd.io/etcd/server/") || strings.HasPrefix(dep, "go.etcd.io/raft") ||
			dep == "github.com/regent-ha/regent/internal/etcdembed" {
			t.Errorf("regent links %s", dep)
		}
	}
}
