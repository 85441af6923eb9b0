package fencing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
	"unicode/utf8"
)

// ErrFenceFailed is wrapped by every error HookConfig.Run returns: the fence
// command could not be started, exited non-zero, timed out or was cancelled.
// The old leader is then not known to be fenced.
var ErrFenceFailed = errors.New("fence command failed")

// DefaultHookTimeout bounds a fence command: long enough for an IPMI or cloud
// API power-off, short enough that a hung BMC does not hold a failover
// forever.
const DefaultHookTimeout = 30 * time.Second

// maxHookOutput is how much of the command's combined output the result
// keeps (the tail): enough for an error message, small enough for the
// decision record in etcd.
const maxHookOutput = 2 << 10

// hookWaitDelay is how long Run waits, after the command exited or was
// killed, for stray descendants that still hold its output pipe before
// closing it.
const hookWaitDelay = 2 * time.Second

// Environment variables a fence command receives (on top of the agent's
// environment). The command must power off or isolate the target so it can
// no longer serve writes, and exit 0 only once that is done.
const (
	EnvFenceTarget        = "REGENT_FENCE_TARGET"          // the member name to fence
	EnvFenceTargetConnURL = "REGENT_FENCE_TARGET_CONN_URL" // its PostgreSQL conn_url from its member key
	EnvScope              = "REGENT_SCOPE"                 // the cluster scope
)

// HookConfig is the `fence:` section of regent.yml: an optional STONITH
// command run before a candidate promotes over a leader that did not release
// the lease.
type HookConfig struct {
	// Command is the argv, for example ["/usr/local/bin/ipmi-off", "--host"].
	// The first element must be an absolute path. Empty disables the hook.
	Command []string `yaml:"command"`
	// Timeout bounds the run; at the timeout the command's whole process
	// group is killed. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// FastFailover enables the fence-confirmed fast path (agent
	// fastpath.go): when a majority of the other members agree the leader
	// is gone, the best candidate runs Command against it and, on exit 0
	// only, deletes its leader key instead of waiting for the lease to
	// expire. Requires Command.
	FastFailover bool `yaml:"fast_failover"`
	// SuspectAfter is how long a majority's suspicion of the leader must
	// last before the fast path fences it. Default 1s.
	SuspectAfter time.Duration `yaml:"suspect_after"`
}

// DefaultSuspectAfter: one second of agreed suspicion filters a leader's
// brief stall (a GC pause, one lost probe) without adding much to the
// fast path's RTO.
const DefaultSuspectAfter = time.Second

// maxSuspectAfter: a longer suspicion is slower than the lease it is
// meant to beat (Patroni's largest usual ttl is 30 s).
const maxSuspectAfter = time.Minute

// HookResult describes one run, for the decision record.
type HookResult struct {
	// Ran is true when the command was started.
	Ran bool
	// ExitCode is the exit status, or -1 when killed by a signal (timeout)
	// or never started.
	ExitCode int
	Duration time.Duration
	// Output is the tail (at most 2 KiB) of stdout and stderr, interleaved.
	Output string
	// Err says why the run failed; empty on success.
	Err string
}

// SetDefaults fills unset fields.
func (c *HookConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultHookTimeout
	}
	if c.SuspectAfter == 0 {
		c.SuspectAfter = DefaultSuspectAfter
	}
}

// Validate checks the section; errors name the key (`fence.command`,
// `fence.timeout`, `fence.fast_failover`, `fence.suspect_after`).
func (c HookConfig) Validate() error {
	var errs []error
	if len(c.Command) > 0 && !filepath.IsAbs(c.Command[0]) {
		errs = append(errs, fmt.Errorf("fence.command: %q must be an absolute path", c.Command[0]))
	}
	if c.Timeout < 0 || (len(c.Command) > 0 && c.Timeout == 0) {
		errs = append(errs, fmt.Errorf("fence.timeout: %s must be positive", c.Timeout))
	}
	if c.FastFailover && len(c.Command) == 0 {
		errs = append(errs, errors.New("fence.fast_failover: requires fence.command (only a confirmed fence may replace the lease expiry)"))
	}
	if c.SuspectAfter < 0 || c.SuspectAfter > maxSuspectAfter {
		errs = append(errs, fmt.Errorf("fence.suspect_after: %s must be between 0 and %s", c.SuspectAfter, maxSuspectAfter))
	}
	return errors.Join(errs...)
}

// Run executes the fence command against target and blocks until it exits,
// c.Timeout passes (the whole process group is then killed) or ctx is done.
// The target is passed in the environment (REGENT_FENCE_TARGET,
// REGENT_FENCE_TARGET_CONN_URL, REGENT_SCOPE), never as arguments. Stdin is
// /dev/null. When the command exits, any processes it left in its process
// group are killed too: a fence command must not leave background work.
//
// With no command configured Run returns Ran=false and a nil error. Any
// failure returns an error wrapping ErrFenceFailed (and
// context.DeadlineExceeded or ctx's error when it timed out or was
// cancelled) together with a result saying why.
func (c HookConfig) Run(ctx context.Context, target, targetConnURL, scope string) (HookResult, error) {
	if len(c.Command) == 0 {
		return HookResult{}, nil
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	out := &tailBuffer{max: maxHookOutput}
	cmd := exec.CommandContext(runCtx, c.Command[0], c.Command[1:]...)
	cmd.Env = append(os.Environ(),
		EnvFenceTarget+"="+target,
		EnvFenceTargetConnURL+"="+targetConnURL,
		EnvScope+"="+scope)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = hookWaitDelay
	ownProcessGroup(cmd)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("fence command %s: %w: %w", c.Command[0], ErrFenceFailed, err)
		return HookResult{ExitCode: -1, Err: err.Error()}, err
	}
	werr := cmd.Wait()
	killProcessGroup(cmd.Process.Pid)
	res := HookResult{
		Ran:      true,
		ExitCode: cmd.ProcessState.ExitCode(),
		Duration: time.Since(start),
		Output:   out.String(),
	}
	var err error
	switch {
	case cmd.ProcessState.Success() && (werr == nil || errors.Is(werr, exec.ErrWaitDelay)):
		return res, nil
	case ctx.Err() != nil:
		err = fmt.Errorf("fence command %s: %w: cancelled: %w", c.Command[0], ErrFenceFailed, context.Cause(ctx))
	case runCtx.Err() != nil:
		err = fmt.Errorf("fence command %s: %w: timed out after %s, process group killed: %w",
			c.Command[0], ErrFenceFailed, timeout, context.DeadlineExceeded)
	default:
		err = fmt.Errorf("fence command %s: %w: exit status %d", c.Command[0], ErrFenceFailed, res.ExitCode)
	}
	res.Err = err.Error()
	return res, err
}

// tailBuffer keeps the last max bytes written to it. exec.Cmd calls Write
// from one goroutine at a time when Stdout and Stderr are the same writer.
type tailBuffer struct {
	buf []byte
	max int
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// String is the tail, starting at a rune boundary when it was cut.
func (t *tailBuffer) String() string {
	b := t.buf
	for t.cut && len(b) > 0 && !utf8.RuneStart(b[0]) {
		b = b[1:]
	}
	return string(b)
}
