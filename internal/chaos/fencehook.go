package chaos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The harness's fence hook (fence.command) for the fast-path rounds and
// for the bench's fenced host death: a STONITH that "powers off" a member
// by SIGKILLing its agent and its PostgreSQL (the postmaster, stopped
// first so it forks nothing more, and every child of it), waits until
// none of them runs any more (a zombie cannot acknowledge a write), logs
// the moment and exits 0. That is what exit 0 must mean: the target can
// no longer acknowledge writes. While the file "fail" exists in its
// directory it does nothing and exits 1 (a broken BMC). Each run appends
// "<unix ns> <target> <exit status>" to "hook.log", written just before
// it exits: the checkers read it (ReadFenceLog).
//
// A member's processes are found from a file per member in targets/
// (WriteFenceTarget): its agent by its command line ("-c <config>"), its
// PostgreSQL by <data_dir>/postmaster.pid. The hook runs as the agents'
// OS user, which owns both; pids are global (the chaos namespaces are
// network namespaces only), so the hook kills across them.
const fenceHookScript = `#!/bin/sh
# Regent test harness fence hook: kill the target member's agent and
# PostgreSQL, confirm they are gone, exit 0 (see internal/chaos/fencehook.go).
set -u
PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"
dir=$(dirname "$0")
log() { echo "$(date +%s%N) ${REGENT_FENCE_TARGET:-?} $1" >>"$dir/hook.log"; exit "$1"; }
if [ -e "$dir/fail" ]; then echo "fence: failing on purpose" >&2; log 1; fi
t="$dir/targets/${REGENT_FENCE_TARGET:-}"
if [ -z "${REGENT_FENCE_TARGET:-}" ] || [ ! -r "$t" ]; then echo "fence: unknown target '${REGENT_FENCE_TARGET:-}'" >&2; log 1; fi
. "$t"
alive() { s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }
pids=$(pgrep -f -- "-c $CONFIG\$" || true)
pm=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
if [ -n "$pm" ] && alive "$pm"; then
	kill -STOP "$pm" 2>/dev/null
	kids=$(pgrep -P "$pm" || true)
	kill -KILL "$pm" $kids 2>/dev/null
	pids="$pids $pm $kids"
fi
i=0
for p in $pids; do
	while alive "$p"; do
		i=$((i+1))
		if [ "$i" -gt 200 ]; then echo "fence: pid $p still running" >&2; log 1; fi
		sleep 0.05
	done
done
echo "fence: $REGENT_FENCE_TARGET down (killed:$pids)"
log 0
`

// fenceFailFile, in the hook's directory, makes the hook fail.
const fenceFailFile = "fail"

// FenceHook is the harness's fence hook in a directory of its own.
type FenceHook struct {
	Dir string
	// Path is the script: fence.command is [Path].
	Path string
}

// FenceTarget is what the hook needs to kill a member.
type FenceTarget struct {
	// Config is the path of the agent's config file (its command line is
	// "<binary> -c <Config>"); DataDir PostgreSQL's data directory.
	Config, DataDir string
}

// WriteFenceHook creates dir and dir/targets with mkdirOwned (owned by
// the agents' OS user, so the hook can write its log there) and the
// script in it.
func WriteFenceHook(dir string, mkdirOwned func(string) error) (*FenceHook, error) {
	h := &FenceHook{Dir: dir, Path: filepath.Join(dir, "fence-hook.sh")}
	for _, d := range []string{dir, filepath.Join(dir, "targets")} {
		if err := mkdirOwned(d); err != nil {
			return nil, fmt.Errorf("fence hook: %w", err)
		}
	}
	// 0755: the agents' user reads and runs it; root (the harness) owns it.
	if err := os.WriteFile(h.Path, []byte(fenceHookScript), 0o755); err != nil {
		return nil, fmt.Errorf("fence hook: %w", err)
	}
	return h, nil
}

// SetTarget tells the hook how to find member's processes.
func (h *FenceHook) SetTarget(member string, t FenceTarget) error {
	body := fmt.Sprintf("CONFIG=%s\nDATA=%s\n", shellQuote(t.Config), shellQuote(t.DataDir))
	if err := os.WriteFile(filepath.Join(h.Dir, "targets", member), []byte(body), 0o644); err != nil {
		return fmt.Errorf("fence hook target %s: %w", member, err)
	}
	return nil
}

// SetFailing makes the hook exit 1 without doing anything (on), or work
// again (off).
func (h *FenceHook) SetFailing(on bool) error {
	p := filepath.Join(h.Dir, fenceFailFile)
	if on {
		return os.WriteFile(p, nil, 0o644)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// FenceRun is one run of the hook, as it logged it: Returned is when it
// was about to exit (after the kill was confirmed, for exit 0).
type FenceRun struct {
	Returned time.Time
	Target   string
	Exit     int
}

// ReadFenceLog returns every run the hook logged, in order (none: the
// log does not exist yet).
func (h *FenceHook) ReadFenceLog() ([]FenceRun, error) {
	data, err := os.ReadFile(filepath.Join(h.Dir, "hook.log"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fence hook log: %w", err)
	}
	var out []FenceRun
	for line := range strings.Lines(string(data)) {
		r, err := parseFenceLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// parseFenceLine reads "<unix ns> <target> <exit>".
func parseFenceLine(line string) (FenceRun, error) {
	f := strings.Fields(line)
	if len(f) != 3 {
		return FenceRun{}, fmt.Errorf("fence hook log line %q: want 3 fields", line)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return FenceRun{}, fmt.Errorf("fence hook log line %q: %w", line, err)
	}
	exit, err := strconv.Atoi(f[2])
	if err != nil {
		return FenceRun{}, fmt.Errorf("fence hook log line %q: %w", line, err)
	}
	return FenceRun{Returned: time.Unix(0, ns), Target: f[1], Exit: exit}, nil
}

// shellQuote quotes s for sh: '…' with every ' as '\”.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
