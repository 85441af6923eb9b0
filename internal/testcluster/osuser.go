package testcluster

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runAs is the OS identity agents (and so PostgreSQL) run as. When the test
// process is not root, agents run as the current user and cred is nil.
type runAs struct {
	uid, gid int
	home     string
	cred     *syscall.Credential
}

// postgresUser returns the identity to run agents as: the `postgres` OS
// user when we are root (PostgreSQL refuses to run as root), else ourselves.
func postgresUser() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("running as root needs the postgres OS user: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return runAs{}, fmt.Errorf("postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return runAs{}, fmt.Errorf("postgres gid %q: %w", u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}
	return runAs{uid: uid, gid: gid, home: u.HomeDir, cred: cred}, nil
}

// mkdirOwned creates dir (0700) owned by the run-as user.
func (r runAs) mkdirOwned(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chown(dir, r.uid, r.gid); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	return nil
}

// writeOwned writes a file readable only by the run-as user.
func (r runAs) writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// openPath makes dir and its parents below os.TempDir() traversable by
// other users: t.TempDir() and the per-test directory above it are 0700
// root, and the postgres user must reach its node directory. Directories
// outside the temporary directory are never changed.
func openPath(dir string) error {
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != tmp && d != filepath.Dir(d); d = filepath.Dir(d) {
		if rel, err := filepath.Rel(tmp, d); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("%s is not under %s", dir, tmp)
		}
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		if fi.Mode().Perm()&0o005 == 0o005 {
			continue
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
	}
	return nil
}
