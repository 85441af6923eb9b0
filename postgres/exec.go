package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// waitDelay bounds how long a finished (or cancelled) child may keep its
// output pipes open; pg_ctl start leaves the postmaster running, and the
// postmaster must never hold our pipes.
const waitDelay = 5 * time.Second

// command prepares a PostgreSQL binary from bin_dir, run under
// Options.SysProcAttr with a cleaned environment.
func (i *Instance) command(ctx context.Context, extraEnv []string, prog string, args ...string) *exec.Cmd {
	return i.commandPath(ctx, extraEnv, filepath.Join(i.cfg.BinDir, prog), args...)
}

// commandPath is command for any program (a replica creation method's).
func (i *Instance) commandPath(ctx context.Context, extraEnv []string, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	if i.sysAttr != nil {
		attr := *i.sysAttr
		cmd.SysProcAttr = &attr
	}
	cmd.Env = append(i.childEnv(), extraEnv...)
	cmd.Dir = "/"
	cmd.WaitDelay = waitDelay
	return cmd
}

// run runs a binary and returns its combined output; a failure's error
// carries the tail of that output.
func (i *Instance) run(ctx context.Context, extraEnv []string, prog string, args ...string) (string, error) {
	return i.runCmd(ctx, i.command(ctx, extraEnv, prog, args...), prog, nil)
}

// runCmd runs a prepared command as run does; prog names it in errors.
// onLine, when set, sees each output line as it comes (lines end with \n
// or \r: progress reports rewrite one line).
func (i *Instance) runCmd(ctx context.Context, cmd *exec.Cmd, prog string, onLine func(string)) (string, error) {
	args := cmd.Args[1:]
	start := time.Now()
	w := &outputWriter{onLine: onLine}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	out := w.buf.Bytes()
	i.log.Debug("ran postgres binary", "prog", prog, "args", strings.Join(args, " "),
		"duration", time.Since(start), "err", err)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return string(out), fmt.Errorf("%s: %w: %s", prog, err, tail(string(out), 2048))
	}
	return string(out), nil
}

// outputWriter collects a child's combined output and hands each line to
// onLine. exec.Cmd writes to it from one goroutine when Stdout and Stderr
// are the same writer.
type outputWriter struct {
	buf     bytes.Buffer
	partial []byte
	onLine  func(string)
}

func (w *outputWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.onLine == nil {
		return len(p), nil
	}
	for _, c := range p {
		if c == '\n' || c == '\r' {
			if len(w.partial) > 0 {
				w.onLine(string(w.partial))
			}
			w.partial = w.partial[:0]
			continue
		}
		w.partial = append(w.partial, c)
	}
	return len(p), nil
}

// childEnv is the agent's environment without PG* variables (so nothing
// overrides the flags we pass), with HOME set for the credential's user.
func (i *Instance) childEnv() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || (i.home != "" && strings.HasPrefix(kv, "HOME=")) {
			continue
		}
		env = append(env, kv)
	}
	if i.home != "" {
		env = append(env, "HOME="+i.home)
	}
	return env
}

// tail returns at most n bytes from the end of s, starting at a line.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		s = s[nl+1:]
	}
	return "…" + s
}

// postmasterAlive reports whether pid is a live (non-zombie) process of
// this cluster. On Linux a process whose working directory is not data_dir
// is not ours (PostgreSQL processes chdir there), so a stale postmaster.pid
// whose pid was reused is not mistaken for a running postmaster. When /proc
// cannot tell, a process that exists counts as alive.
func (i *Instance) postmasterAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// Format: pid (comm) state ...; comm may contain spaces and ')'.
	s := string(stat)
	if closing := strings.LastIndexByte(s, ')'); closing >= 0 && closing+2 < len(s) {
		if state := s[closing+2]; state == 'Z' || state == 'X' {
			return false
		}
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	return cwd == i.cfg.DataDir || cwd == i.realDataDir()
}

// realDataDir is data_dir with symlinks resolved (as the kernel reports a
// working directory), or data_dir itself when that fails.
func (i *Instance) realDataDir() string {
	if p, err := filepath.EvalSymlinks(i.cfg.DataDir); err == nil {
		return p
	}
	return i.cfg.DataDir
}
