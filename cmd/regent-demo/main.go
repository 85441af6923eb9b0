// Command regent-demo runs a real local Regent cluster until Ctrl-C: an
// embedded etcd and N `regent` agents, each with its own PostgreSQL, in a
// temporary directory that is removed on exit.
//
//	regent-demo [-nodes 3] [-routing] [-regent bin/regent] [-bin-dir /usr/lib/postgresql/15/bin]
//	regent-demo -version
//
// -routing adds a write port through PgBouncer and one through HAProxy,
// driven by the agents' routing: section (Debian packages pgbouncer and
// haproxy), and prints a client loop and a switchover to watch it through.
//
// It is a binary of its own because it links etcd's server, which the
// agent does not need: `regent` stays small.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/regent-ha/regent/internal/buildinfo"
	"github.com/regent-ha/regent/internal/demo"
)

// Exit codes, as the agent's.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("regent-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "number of members")
	agentBin := fs.String("regent", "", "the regent agent binary (default: regent next to this binary, else on PATH)")
	binDir := fs.String("bin-dir", "/usr/lib/postgresql/15/bin", "PostgreSQL binaries")
	logLevel := fs.String("log-level", "info", "agents' log level: debug, info, warn, error")
	withRouting := fs.Bool("routing", false, "add write ports through PgBouncer and HAProxy, driven by the agents (needs the pgbouncer and haproxy packages)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *version {
		fmt.Fprint(stdout, "regent-demo ", buildinfo.Get())
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "regent-demo: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *nodes < 1 || *nodes > 9 {
		fmt.Fprintln(stderr, "regent-demo: -nodes must be 1 to 9")
		return exitUsage
	}
	bin, err := agentBinary(*agentBin)
	if err != nil {
		fmt.Fprintf(stderr, "regent-demo: %v\n", err)
		return exitUsage
	}
	if err := demo.Run(ctx, demo.Options{Nodes: *nodes, Agent: bin, BinDir: *binDir, LogLevel: *logLevel, Routing: *withRouting, Stdout: stdout}); err != nil {
		fmt.Fprintf(stderr, "regent-demo: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// agentBinary resolves the agent binary: the flag, else `regent` in this
// binary's directory (make build puts both in bin/), else on PATH.
func agentBinary(flagValue string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("-regent: %w", err)
		}
		return flagValue, nil
	}
	if self, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(self), "regent")
		if _, err := os.Stat(sibling); err == nil {
			return sibling, nil
		}
	}
	path, err := exec.LookPath("regent")
	if err != nil {
		return "", fmt.Errorf("no regent binary next to regent-demo or on PATH; build it (make build) or pass -regent")
	}
	return path, nil
}
