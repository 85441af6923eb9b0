package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sweep removes what a run of this suite that is gone (its test process
// no longer exists: killed, timed out) left behind: the processes still
// inside its namespaces (PostgreSQL outlives its agent: pg_ctl daemonizes
// it), its namespaces, veths and bridge. Names of live runs are left alone.
//
// Names with our own tag (ours is tag) are stale too when sweep runs: a
// previous cluster of this process removed its own, so they can only be a
// dead run's whose pid we reuse.
func sweep(ctx context.Context, tag string, logf func(string, ...any)) {
	stale := func(name string) bool { return leftover(name) || strings.HasPrefix(name, tag+"-") }
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err == nil {
		for line := range strings.Lines(string(out)) {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if !stale(name) {
				continue
			}
			killNamespacePids(ctx, name, logf)
			if err := ip(ctx, "netns", "del", name); err != nil {
				logf("chaos: sweep: %v", err)
			} else {
				logf("chaos: sweep: removed namespace %s of a finished run", name)
			}
		}
	}
	sweepDirs(logf)
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
			logf("chaos: sweep: %v", err)
		}
	}
}

// leftover reports whether name is ours (rgc<pid36>-…) and its run's test
// process is gone.
func leftover(name string) bool {
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
		return false // ours: newNetwork clears stale ones of our own tag
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
			logf("chaos: sweep: killed pid %d left in namespace %s", pid, ns)
		}
	}
}

// dirPrefix starts the name of our temporary directories, followed by the
// creating process's pid in base 36 and a dash (see tempDir).
const dirPrefix = "regent-chaos-"

// tempDir creates a temporary directory named after this process, so that
// a later sweep can tell whether its run is gone.
func tempDir(kind string) (string, error) {
	return os.MkdirTemp("", dirPrefix+strconv.FormatInt(int64(os.Getpid()), 36)+"-"+kind+"-")
}

// sweepDirs removes the temporary directories of runs that are gone. A
// logs directory is kept: a failed run (or -chaos.keep) printed its path
// for someone to read; everything beside it goes.
func sweepDirs(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		tag, _, ok := strings.Cut(rest, "-")
		if !ok || !leftover(namePrefix+tag+"-dir") {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "logs")); err != nil {
			if err := os.RemoveAll(d); err == nil {
				logf("chaos: sweep: removed %s of a finished run", d)
			}
			continue
		}
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() != "logs" {
				_ = os.RemoveAll(filepath.Join(d, e.Name()))
			}
		}
	}
}
