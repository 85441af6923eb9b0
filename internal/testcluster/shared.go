package testcluster

import (
	"syscall"
	"testing"
)

// The pieces below are exported for the other real-process harness,
// internal/chaos, which runs the same agents and PostgreSQL servers in
// network namespaces: the OS identity they run as and where the
// PostgreSQL binaries are. The processes themselves are internal/proc's.

// OSUser is the identity agents (and so PostgreSQL) run as: the `postgres`
// OS user when the test runs as root, the current user otherwise.
type OSUser struct{ r runAs }

// LookupOSUser returns the identity agents must run as.
func LookupOSUser() (OSUser, error) {
	r, err := postgresUser()
	return OSUser{r: r}, err
}

// Credential is the credential to start agents with; nil when the test
// does not run as root (agents then run as ourselves).
func (u OSUser) Credential() *syscall.Credential { return u.r.cred }

// MkdirOwned creates dir (0700) owned by the user.
func (u OSUser) MkdirOwned(dir string) error { return u.r.mkdirOwned(dir) }

// WriteOwned writes a file (0600) owned by the user.
func (u OSUser) WriteOwned(path string, data []byte) error { return u.r.writeOwned(path, data) }

// OpenPath makes dir and its parents below os.TempDir() traversable by the
// agents' user (t.TempDir() is 0700 root).
func OpenPath(dir string) error { return openPath(dir) }

// OpenTempDir is t.TempDir() made traversable by the agents' user
// (OpenPath), for files they must read; it fails the test otherwise.
func OpenTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := openPath(dir); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return dir
}

// PGBinDir finds the PostgreSQL binaries ($REGENT_PG_BIN_DIR, else the
// newest /usr/lib/postgresql/*/bin).
func PGBinDir() (string, error) { return pgBinDir() }
