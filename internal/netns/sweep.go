package netns

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// sweep removes what a run that is gone (its test process
// no longer exists: killed, timed out) left behind: the processes still
// inside its namespaces (PostgreSQL outlives its agent: pg_ctl daemonizes
// it), its namespaces, veths and bridge. Names of live runs are left alone.
//
// Names with our own tag (ours is tag) are stale too when sweep runs: a
// previous cluster of this process removed its own, so they can only be a
// dead run's whose pid we reuse.
func sweep(ctx context.Context, tag string, logf func(string, ...any)) {
	stale := func(name string) bool { return Leftover(name) || strings.HasPrefix(name, tag+"-") }
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err == nil {
		for line := range strings.Lines(string(out)) {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if !stale(name) {
				continue
			}
			killNamespacePids(ctx, name, logf)
			if err := ip(ctx, "netns", "del", name); err != nil {
				logf("netns: sweep: %v", err)
			} else {
				logf("netns: sweep: removed namespace %s of a finished run", name)
			}
		}
	}
	out, err = exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return
	}
	for line := range strings.Lines(string(out)) {
		// "7: rgc1a2b-pg1@if2: <BROADCAST,…"
		fields := strings.SplitN(line, ": ", 3)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(fields[1], "@")
		if !stale(name) {
			continue
		}
		if err := ip(ctx, "link", "del", name); err != nil && !isNotFound(err) {
			logf("netns: sweep: %v", err)
		}
	}
}

// Leftover reports whether name is ours (rgc<pid36>-…) and its run's test
// process is gone.
func Leftover(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return false
	}
	tag, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	pid, err := strconv.ParseInt(tag, 36, 64)
	if err != nil || pid <= 0 {
		return false
	}
	if int(pid) == os.Getpid() {
		return false // ours: New clears stale ones of our own tag
	}
	return syscall.Kill(int(pid), 0) == syscall.ESRCH
}

// killNamespacePids SIGKILLs the processes left in a dead run's namespace.
func killNamespacePids(ctx context.Context, ns string, logf func(string, ...any)) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for f := range strings.FieldsSeq(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			logf("netns: sweep: killed pid %d left in namespace %s", pid, ns)
		}
	}
}
