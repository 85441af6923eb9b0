package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/demo"
	"github.com/regent-ha/regent/internal/syncbuf"
	"github.com/regent-ha/regent/internal/testcluster"
)

// TestDemo is `make demo` as a newcomer runs it: the cluster comes up
// healthy — seen from outside, exactly one member answers GET /primary
// with 200 and the others GET /replica — and stopping it (Ctrl-C) leaves
// no process, port or directory behind.
func TestDemo(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var out syncbuf.Buffer // written by the demo goroutine, read by the test
	var c *demo.Cluster
	var roles []string
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{
			Agent:  testcluster.AgentBinary(t),
			Stdout: &out,
			Ready: func(ready *demo.Cluster) {
				c = ready
				for _, n := range c.Nodes {
					roles = append(roles, fmt.Sprintf("%s primary=%d replica=%d", n.Name,
						getCode(ctx, n.APIPort, "/primary"), getCode(ctx, n.APIPort, "/replica")))
				}
				stop() // like Ctrl-C
			},
		})
	}()
	select {
	case err := <-done: // c and roles were written before Run returned
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the demo neither got healthy nor failed within 3 min; output:\n%s", out.String())
	}
	if c == nil {
		t.Fatalf("the demo returned without becoming ready; output:\n%s", out.String())
	}
	got := strings.Join(roles, "; ")
	if len(roles) != 3 || strings.Count(got, "primary=200") != 1 || strings.Count(got, "replica=200") != 2 {
		t.Errorf("roles when ready: %s; want one primary (GET /primary 200) and two replicas (GET /replica 200)", got)
	}
	for _, want := range []string{"Try (in another terminal)", "regentctl --etcd", "Stopping the demo cluster"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("demo directory %s after stop: %v, want it removed", c.Dir, err)
	}
	for _, n := range c.Nodes {
		for _, port := range []int{n.PGPort, n.APIPort} {
			if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				conn.Close()
				t.Errorf("%s: port %d still accepts connections after the demo stopped", n.Name, port)
			}
		}
	}
	if pids := processesIn(c.Dir); len(pids) > 0 {
		t.Errorf("processes still running in %s after the demo stopped: %v", c.Dir, pids)
	}
}

func getCode(ctx context.Context, port int, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// processesIn lists the pids whose working directory is dir or below it
// (PostgreSQL chdirs into its data directory).
func processesIn(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		if cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
