package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// ErrCommitMissing: the commit BuildAt was asked for is not in the
// repository's history (a shallow clone, or a history that was rewritten).
var ErrCommitMissing = errors.New("commit not in this clone's history")

// fullCommit is the only commit form BuildAt accepts: a cache keyed by an
// abbreviation or a branch name could serve a stale build.
var fullCommit = regexp.MustCompile(`^[0-9a-f]{40}$`)

// BuildAt returns the path of the binary of pkg ("./cmd/regent") built
// from the source of commit (40 hex digits) of the git repository holding
// the module, for a rolling-upgrade test's previous release. The build
// (`git archive` of the commit into a temporary directory, then `go build`
// there, with the same module cache) is kept across test processes in the
// user cache directory (<UserCacheDir>/regent-test/<commit>/), so only the
// first run pays for it; each test process copies it into its build
// directory, where the agents' OS user can execute it. A commit missing
// from the history is ErrCommitMissing.
func BuildAt(ctx context.Context, commit, pkg string, logf func(format string, args ...any)) (string, error) {
	if !fullCommit.MatchString(commit) {
		return "", fmt.Errorf("build %s at %q: want a full 40-digit commit id", pkg, commit)
	}
	return memoBuild(ctx, commit+" "+pkg, func(root, dir string) (string, error) {
		cached, err := cachedBuildAt(ctx, root, commit, pkg, logf)
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, filepath.Base(pkg)+"-"+commit[:12])
		if err := copyExecutable(cached, path); err != nil {
			return "", err
		}
		return path, nil
	})
}

// cachedBuildAt returns the cached build of pkg at commit, building it
// first when the cache does not hold it.
func cachedBuildAt(ctx context.Context, root, commit, pkg string, logf func(string, ...any)) (string, error) {
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("build %s at %s: %w", pkg, commit, err)
	}
	dir := filepath.Join(cacheDir, "regent-test", commit+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	path := filepath.Join(dir, filepath.Base(pkg))
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil
	}
	if err := exec.CommandContext(ctx, "git", "-C", root, "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		return "", fmt.Errorf("build %s at %s: %w (git -C %s cat-file -e: %w); fetch the full history (git fetch --unshallow)", pkg, commit, ErrCommitMissing, root, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s at %s: %w", pkg, commit, err)
	}
	src, err := os.MkdirTemp("", "regent-src-"+commit[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("build %s at %s: %w", pkg, commit, err)
	}
	defer func() { _ = os.RemoveAll(src) }()
	start := time.Now()
	// git archive, then tar -x: the commit's tree, without touching the
	// clone's worktrees or index.
	tarball := filepath.Join(src, "src.tar")
	for _, args := range [][]string{
		{"git", "-C", root, "archive", "--format=tar", "-o", tarball, commit},
		{"tar", "-x", "-f", tarball, "-C", src},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s at %s: %s: %w\n%s", pkg, commit, strings.Join(args, " "), err, out)
		}
	}
	// Built into the cache directory under a temporary name, then renamed:
	// a concurrent test process never runs a half-written binary.
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", filepath.Base(pkg), os.Getpid()))
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, pkg)
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build %s at %s: go build: %w\n%s", pkg, commit, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build %s at %s: %w", pkg, commit, err)
	}
	if logf != nil {
		logf("built %s at %s into %s in %s", pkg, commit[:12], path, time.Since(start).Round(time.Millisecond))
	}
	return path, nil
}

// copyExecutable copies src to dst with mode 0755.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy binary: %w", err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("copy binary: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy binary %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy binary %s: %w", dst, err)
	}
	return nil
}
