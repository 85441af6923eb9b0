package main

import (
	"bytes"
	"testing"

	"github.com/regent-ha/regent/cmd/internal/testconfig"
)

// TestFastFailoverWithoutFenceCommandRefused: fence.fast_failover without
// fence.command is a config error (exit 2, the key named), for `regent
// validate` and for the agent, which exits before connecting to anything.
func TestFastFailoverWithoutFenceCommandRefused(t *testing.T) {
	write := func(fence string) string {
		return testconfig.WriteDoc(t, testconfig.Doc(testconfig.LoopbackAPI, "")+fence)
	}
	wantConfigError(t, write("fence: {fast_failover: true, suspect_after: 2}\n"), "fence.fast_failover: requires fence.command")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-c", write("fence: {command: [/bin/true], fast_failover: true, suspect_after: 2}\n")}, &stdout, &stderr); code != exitOK {
		t.Errorf("regent validate with a fence command = exit %d, want 0\n%s", code, stderr.String())
	}
}
