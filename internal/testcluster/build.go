package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the agent binary shared by every cluster of one test process.
// It is built at most once (the first New pays for it when the build cache
// is cold).
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// AgentBinary returns the path of the regent binary, built once per test
// process into a directory the postgres user can read and execute.
func AgentBinary(t testing.TB) string { return agentBinary(t) }

// agentBinary returns the path of the regent binary, building it on first
// use into a directory the postgres user can read and execute.
func agentBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		start := time.Now()
		binary.path, binary.err = buildAgent(t.Context())
		if binary.err == nil {
			t.Logf("testcluster: built %s in %s", binary.path, time.Since(start).Round(time.Millisecond))
		}
	})
	if binary.err != nil {
		t.Fatalf("testcluster: build regent: %v", binary.err)
	}
	return binary.path
}

func buildAgent(ctx context.Context) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "regent-e2e-bin-")
	if err != nil {
		return "", fmt.Errorf("create binary dir: %w", err)
	}
	binary.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("chmod binary dir: %w", err)
	}
	path := filepath.Join(dir, "regent")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "./cmd/regent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/regent: %w\n%s", err, out)
	}
	return path, nil
}

// moduleRoot is the directory of the go.mod governing the test's package:
// found by walking up from the working directory (go test runs in the
// package directory), or else by asking the go command.
func moduleRoot(ctx context.Context) (string, error) {
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

// Main runs the tests of an e2e package and then removes the agent binary
// built for them. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testcluster.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}
