package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/regent-ha/regent/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "number of members")
	binDir := fs.String("bin-dir", "/usr/lib/postgresql/15/bin", "PostgreSQL binaries")
	logLevel := fs.String("log-level", "info", "agents' log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *nodes < 1 || *nodes > 9 {
		fmt.Fprintln(stderr, "regent demo: -nodes must be 1 to 9")
		return exitUsage
	}
	if err := demo.Run(ctx, demo.Options{Nodes: *nodes, BinDir: *binDir, LogLevel: *logLevel, Stdout: stdout}); err != nil {
		fmt.Fprintf(stderr, "regent demo: %v\n", err)
		return exitFailed
	}
	return exitOK
}
