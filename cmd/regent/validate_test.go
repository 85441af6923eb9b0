package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/regent-ha/regent/cmd/internal/testconfig"
)

// TestValidateWarnsAboutLockOut: a pg_hba line that turns Regent's
// replication away is a warning on stderr, not a failure; Debian's peer
// line is no warning at all.
func TestValidateWarnsAboutLockOut(t *testing.T) {
	for _, tc := range []struct {
		hba, warn string
	}{
		{"    - local all postgres peer", ""},
		{"    - host replication all 10.0.0.0/8 reject", `warning: postgres.pg_hba[0] "host replication all 10.0.0.0/8 reject" would turn away the members' replication connections`},
	} {
		path := testconfig.Write(t, testconfig.LoopbackAPI, tc.hba+"\n")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", "-c", path}, &stdout, &stderr); code != exitOK {
			t.Fatalf("validate with %q: exit %d\n%s", tc.hba, code, stderr.String())
		}
		if tc.warn == "" && stderr.Len() != 0 || !strings.Contains(stderr.String(), tc.warn) {
			t.Errorf("validate with %q: stderr %q, want %q", tc.hba, stderr.String(), tc.warn)
		}
		if !strings.HasSuffix(stdout.String(), ": ok\n") {
			t.Errorf("validate with %q: stdout %q", tc.hba, stdout.String())
		}
	}
}
