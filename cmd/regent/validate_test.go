package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validateConfig = `
name: pg1
scope: demo
etcd: {endpoints: [http://127.0.0.1:2379]}
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
postgres:
  data_dir: /var/lib/regent/pg1
  listen: 127.0.0.1:5432
  connect_address: 10.0.0.2:5432
  superuser: {username: postgres, password: a}
  replication: {username: replicator, password: b}
  pg_hba:
%s
bootstrap:
  dcs: {ttl: 10, loop_wait: 1, retry_timeout: 3}
`

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
		path := filepath.Join(t.TempDir(), "regent.yml")
		if err := os.WriteFile(path, []byte(strings.Replace(validateConfig, "%s", tc.hba, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
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
