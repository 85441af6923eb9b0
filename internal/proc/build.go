package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binDirPrefix starts the name of a build directory, followed by the
// building test process's pid and a dash: a later process removes the
// directories of dead ones (a test binary killed before RemoveBuilds).
const binDirPrefix = "regent-test-bin-"

// builds is the one build cache of the test process: each (package, build
// tags) is built at most once, into one directory the agents' OS user can
// read and execute.
var builds struct {
	mu   sync.Mutex
	dir  string
	done map[string]string // package + " " + tags (or commit + " " + package) → binary
}

// Build returns the path of the binary of pkg ("./cmd/regent", relative to
// the module root) built with the given build tags, building it on first
// use (and saying so through logf, when not nil). The binary is named
// after pkg's last element (and the tags).
func Build(ctx context.Context, pkg, tags string, logf func(format string, args ...any)) (string, error) {
	return memoBuild(ctx, pkg+" "+tags, func(root, dir string) (string, error) {
		return build(ctx, root, dir, pkg, tags, logf)
	})
}

// build runs `go build` of pkg with tags in root, into dir.
func build(ctx context.Context, root, dir, pkg, tags string, logf func(format string, args ...any)) (string, error) {
	name := filepath.Base(pkg)
	args := []string{"build"}
	if tags != "" {
		args = append(args, "-tags", tags)
		name += "-" + strings.NewReplacer(",", "-", " ", "-").Replace(tags)
	}
	path := filepath.Join(dir, name)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", path, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (tags %q): %w\n%s", pkg, tags, err, out)
	}
	if logf != nil {
		logf("built %s in %s", path, time.Since(start).Round(time.Millisecond))
	}
	return path, nil
}

// memoBuild returns the binary remembered under key, or else the one
// produce puts into the build directory dir (given the module root),
// remembering it. It holds builds.mu throughout: one caller builds, the
// others wait for it.
func memoBuild(ctx context.Context, key string, produce func(root, dir string) (string, error)) (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if path, ok := builds.done[key]; ok {
		return path, nil
	}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	path, err := produce(root, dir)
	if err != nil {
		return "", err
	}
	builds.done[key] = path
	return path, nil
}

// buildDir returns the test process's build directory (readable and
// executable by every user), creating it and the build map on first use.
// The caller holds builds.mu.
func buildDir() (string, error) {
	if builds.dir == "" {
		removeStaleBuilds()
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", binDirPrefix, os.Getpid()))
		if err != nil {
			return "", fmt.Errorf("create binary dir: %w", err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("chmod binary dir: %w", err)
		}
		builds.dir, builds.done = dir, map[string]string{}
	}
	return builds.dir, nil
}

// RemoveBuilds deletes every binary Build made (from TestMain, after the
// tests ran).
func RemoveBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	builds.dir, builds.done = "", nil
}

// removeStaleBuilds removes the build directories of test processes that
// are gone.
func removeStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), binDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // still running (or the pid was reused: leave it)
		}
		_ = os.RemoveAll(d)
	}
}

// ModuleRoot is the directory of the go.mod governing the test's package:
// found by walking up from the working directory (go test runs in the
// package directory), or else by asking the go command.
func ModuleRoot(ctx context.Context) (string, error) {
	if dir, err := os.Getwd(); err == nil {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}
