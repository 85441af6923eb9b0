package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/regent-ha/regent/internal/testcluster"
)

// binaries are the programs a cluster runs: the agent and the etcd member
// helper. They are built once per test process and set of build tags
// (the self-test builds the agent with regent_unsafe_nofence).
type binaries struct {
	regent string
	etcd   string
}

var builds struct {
	mu   sync.Mutex
	dirs []string
	done map[string]binaries
}

// build returns the binaries for the given agent build tags, building them
// on first use into a directory the postgres user can read and execute.
func build(ctx context.Context, tags string) (binaries, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if b, ok := builds.done[tags]; ok {
		return b, nil
	}
	root, err := testcluster.ModuleRoot(ctx)
	if err != nil {
		return binaries{}, err
	}
	dir, err := tempDir("bin")
	if err != nil {
		return binaries{}, fmt.Errorf("create binary dir: %w", err)
	}
	builds.dirs = append(builds.dirs, dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return binaries{}, fmt.Errorf("chmod binary dir: %w", err)
	}
	b := binaries{regent: filepath.Join(dir, "regent"), etcd: filepath.Join(dir, "chaos-etcd")}
	if err := goBuild(ctx, root, b.regent, tags, "./cmd/regent"); err != nil {
		return binaries{}, err
	}
	if err := goBuild(ctx, root, b.etcd, "", "./internal/chaos/cmd/chaos-etcd"); err != nil {
		return binaries{}, err
	}
	if builds.done == nil {
		builds.done = map[string]binaries{}
	}
	builds.done[tags] = b
	return b, nil
}

func goBuild(ctx context.Context, root, out, tags, pkg string) error {
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (tags %q): %w\n%s", pkg, tags, err, b)
	}
	return nil
}

// removeBinaries deletes every binary directory built by this process.
func removeBinaries() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	for _, d := range builds.dirs {
		_ = os.RemoveAll(d)
	}
	builds.dirs, builds.done = nil, nil
}
