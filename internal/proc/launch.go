package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Launcher forks a prepared command: Plain where the test runs, Netns in a
// network namespace.
type Launcher func(cmd *exec.Cmd) error

// Plain starts cmd in the test process's own namespaces.
func Plain(cmd *exec.Cmd) error { return cmd.Start() }

// Netns starts a command inside the network namespace at nsPath (see
// InNetns: the child inherits the forking thread's namespace).
//
// Pdeathsig follows the forking thread: it must outlive the child, which
// is why InNetns returns threads to the runtime rather than ending them. If
// the thread cannot be moved back it ends, and the child with it: kill it
// outright.
func Netns(nsPath string) Launcher {
	return func(cmd *exec.Cmd) error {
		err := InNetns(nsPath, cmd.Start)
		if errors.Is(err, errNetnsNotRestored) && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		return err
	}
}

// errNetnsNotRestored: the thread could not be moved back to its own
// namespace (it ends with its goroutine).
var errNetnsNotRestored = errors.New("cannot move the thread back to its own network namespace")

// InNetns runs fn on an OS thread moved into the network namespace at
// nsPath: a goroutine locked to its thread moves the thread in, runs fn
// and moves the thread back before unlocking it. Sockets fn creates, and
// children it forks, belong to that namespace for good. Go spawns new
// threads from a clean template thread while one is locked, so no other
// goroutine ever runs in the namespace. The thread must be moved back, not
// ended: it may be one that earlier forked a child with Pdeathsig (an
// agent, an etcd member), which dies with it. An empty nsPath runs fn
// where it is.
func InNetns(nsPath string, fn func() error) error {
	if nsPath == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err, restored := runInNetns(nsPath, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// runInNetns runs on a locked thread; restored says whether the thread is
// back in its own namespace.
func runInNetns(nsPath string, fn func() error) (err error, restored bool) {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return fmt.Errorf("open own netns: %w", err), true
	}
	defer closeNS(self)
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err), true
	}
	defer closeNS(target)
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", nsPath, err), true
	}
	fnErr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("%w: setns back from %s: %w", errNetnsNotRestored, nsPath, err), false
	}
	return fnErr, true
}

// closeNS closes a namespace handle opened read-only: nothing was written
// through it, so a failed close loses nothing.
func closeNS(f *os.File) { _ = f.Close() }
