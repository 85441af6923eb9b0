package testconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// LoopbackAPI is a restapi section listening on loopback only.
const LoopbackAPI = "  listen: 127.0.0.1:8008\n  connect_address: 127.0.0.1:8008\n"

// Write writes a regent.yml into the test's temporary directory and
// returns its path. restapi is the lines of the restapi section and hba
// those of postgres.pg_hba (each line ending in a newline; "" for none);
// the rest is a valid configuration of member pg1 of scope demo.
func Write(t testing.TB, restapi, hba string) string {
	t.Helper()
	return WriteDoc(t, Doc(restapi, hba))
}

// WriteDoc writes doc as a regent.yml into the test's temporary directory
// and returns its path.
func WriteDoc(t testing.TB, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "regent.yml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Doc is the regent.yml Write writes.
func Doc(restapi, hba string) string {
	return `name: pg1
scope: demo
etcd: {endpoints: [http://127.0.0.1:2379]}
restapi:
` + restapi + `postgres:
  data_dir: /var/lib/regent/pg1
  bin_dir: /usr/lib/postgresql/15/bin
  listen: 127.0.0.1:5432
  connect_address: 10.0.0.2:5432
  superuser: {username: postgres, password: a}
  replication: {username: replicator, password: b}
  pg_hba:
` + hba + `watchdog: {mode: off}
bootstrap:
  dcs: {ttl: 10, loop_wait: 1, retry_timeout: 3}
`
}
