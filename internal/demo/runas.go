package demo

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// runAs is the OS user the agents and PostgreSQL run as: `postgres` when
// the demo runs as root (PostgreSQL refuses root), else the current user.
type runAs struct {
	credential *syscall.Credential
	uid, gid   int
}

func lookupRunAs() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("running as root needs the postgres OS user (install postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return runAs{credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

// prepareDir makes dir usable by the run-as user.
func (r runAs) prepareDir(dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	return r.chown(dir)
}

func (r runAs) chown(path string) error {
	if r.credential == nil {
		return nil
	}
	return os.Chown(path, r.uid, r.gid)
}
