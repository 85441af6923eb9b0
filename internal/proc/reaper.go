package proc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regent-ha/regent/postgres"
)

// PostgreSQL is started by pg_ctl, which exits once the postmaster is up:
// the postmaster is an orphan, reparented to the nearest subreaper or PID 1.
// When a test SIGKILLs it, postmaster.pid stays behind naming the dead pid,
// and PostgreSQL (like pg_ctl, and our agent) checks that pid with kill(0),
// which succeeds on a zombie: until someone reaps it, a restart fails with
// `lock file "postmaster.pid" already exists`. PID 1 of a container may
// reap late or never. So the test process becomes a child subreaper and
// reaps the PostgreSQL zombies it inherits.

// reapInterval: zombies cost nothing but a pid; one scan of /proc a second.
const reapInterval = time.Second

var subreaper struct {
	once sync.Once
	err  error
}

// BecomeSubreaper makes orphans of our descendants (PostgreSQL started by
// pg_ctl) our children, so that ReapOrphans can reap them.
func BecomeSubreaper() error {
	subreaper.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaper.err = fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	})
	return subreaper.err
}

// reapable names the orphans we may reap: never a process we started with
// os/exec (regent, go, patronictl, a shell), whose Wait would then fail.
var reapable = map[string]bool{
	"postgres": true, "postmaster": true, "pg_ctl": true, "initdb": true,
	"pg_basebackup": true, "pg_rewind": true, "pg_controldata": true,
}

// ReapOrphans reaps our zombie children that are PostgreSQL processes.
func ReapOrphans() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, state, ppid, ok := postgres.ProcStat(pid)
		if !ok || ppid != self || state != 'Z' || !reapable[comm] {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// ReapLoop reaps PostgreSQL orphans every reapInterval until ctx ends,
// then closes done, so that crashes the harness did not cause (or clean
// exits) leave no zombie.
func ReapLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(reapInterval)
	defer tick.Stop()
	for {
		ReapOrphans()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
