package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrWipeRefused is wrapped by WipeDataDir and CheckWipe when the guard
// refuses: nothing was deleted.
var ErrWipeRefused = errors.New("refusing to wipe the data directory")

// AnySystem, as the systemID of WipeDataDir and CheckWipe, accepts the
// data directory of any cluster: for a bootstrap that fails before the
// cluster has its identifier (the directory is its own initdb's).
const AnySystem uint64 = 0

// hostFiles are where the guard reads the system's accounts and mounts.
type hostFiles struct{ passwd, mountinfo string }

var systemFiles = hostFiles{passwd: "/etc/passwd", mountinfo: "/proc/self/mountinfo"}

// CheckWipe tells, deleting nothing, whether WipeDataDir(ctx, systemID)
// would go ahead: nil, or an error wrapping ErrWipeRefused that says why.
// It accepts an absent or empty data_dir, and a PostgreSQL data directory
// (PG_VERSION present) whose system identifier (pg_controldata, bounded by
// ctx) is systemID, or any when systemID is AnySystem. It refuses anything
// else, and — however its contents look — `/`, a mount point (emptying a
// volume is not Regent's call; PostgreSQL itself advises a subdirectory)
// and a home directory from /etc/passwd or a directory holding one
// (postgres's own home, /var/lib/postgresql on Debian, included).
func (i *Instance) CheckWipe(ctx context.Context, systemID uint64) error {
	entries, err := os.ReadDir(i.cfg.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("wipe data dir: %w", err)
	case len(entries) == 0:
		return nil // nothing to delete
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrWipeRefused, i.cfg.DataDir, fmt.Sprintf(format, args...))
	}
	if why := wipeLocationProblem(i.cfg.DataDir, systemFiles); why != "" {
		return refuse("%s", why)
	}
	if st, err := os.Stat(filepath.Join(i.cfg.DataDir, "PG_VERSION")); err != nil || !st.Mode().IsRegular() {
		return refuse("it holds %d entries but no PG_VERSION: not a PostgreSQL data directory", len(entries))
	}
	if systemID == AnySystem {
		return nil
	}
	cd, err := i.ControlData(ctx)
	if err != nil {
		return refuse("cannot read its system identifier, so cannot tell it is this cluster's (%v)", err)
	}
	if cd.SystemID != systemID {
		return refuse("its database system identifier %d is not this cluster's %d (initialize key): it belongs to another cluster", cd.SystemID, systemID)
	}
	return nil
}

// WipeDataDir removes the contents of data_dir (keeping the directory),
// e.g. before a re-clone, once CheckWipe(ctx, systemID) accepts it. It
// refuses while a postmaster is running.
func (i *Instance) WipeDataDir(ctx context.Context, systemID uint64) error {
	if err := i.CheckWipe(ctx, systemID); err != nil {
		return err
	}
	return i.removeContents()
}

// removeContents empties data_dir without the guard: for what this
// package just put into a directory it found empty (a failed clone).
func (i *Instance) removeContents() error {
	if pid, err := i.PostmasterPID(); err == nil {
		return fmt.Errorf("wipe data dir: postmaster %d is running", pid)
	}
	entries, err := os.ReadDir(i.cfg.DataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("wipe data dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(i.cfg.DataDir, e.Name())); err != nil {
			return fmt.Errorf("wipe data dir: %w", err)
		}
	}
	i.log.Info("wiped data directory", "data_dir", i.cfg.DataDir)
	return nil
}

// wipeLocationProblem says why dir must never be emptied, or "". dir is
// resolved through symlinks first: the target is what would be emptied.
func wipeLocationProblem(dir string, files hostFiles) string {
	if !filepath.IsAbs(dir) {
		return "not an absolute path"
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Sprintf("cannot resolve it (%v)", err)
	}
	if resolved == "/" {
		return "it is the root directory"
	}
	if mountPoint(resolved, files.mountinfo) {
		return "it is a mount point; use a subdirectory of the mount as data_dir"
	}
	for _, home := range homeDirs(files.passwd) {
		switch {
		case home == resolved:
			return "it is a home directory (in " + files.passwd + ")"
		case strings.HasPrefix(home, resolved+"/"):
			return "it holds the home directory " + home
		}
	}
	return ""
}

// mountPoint reports whether dir is mounted on: its device differs from its
// parent's, or /proc/self/mountinfo lists it (a bind mount of the same
// device).
func mountPoint(dir, mountinfo string) bool {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) == nil && syscall.Stat(filepath.Dir(dir), &parent) == nil && st.Dev != parent.Dev {
		return true
	}
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return false // no /proc: the device test above is all there is
	}
	for _, m := range mountPoints(bytes.NewReader(data)) {
		if m == dir {
			return true
		}
	}
	return false
}

// mountPoints lists the mount points of a mountinfo file (the fifth field,
// with its octal escapes such as \040 for a blank undone).
func mountPoints(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// homeDirs lists the home directories of a passwd file, resolved through
// symlinks where they exist.
func homeDirs(passwd string) []string {
	data, err := os.ReadFile(passwd)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || !filepath.IsAbs(f[5]) {
			continue
		}
		home := filepath.Clean(f[5])
		if resolved, err := filepath.EvalSymlinks(home); err == nil {
			home = resolved
		}
		out = append(out, home)
	}
	return out
}
