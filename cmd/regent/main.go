// Command regent is the Regent agent: one runs beside PostgreSQL on every
// database host and keeps exactly one writable primary per cluster.
//
//	regent -c regent.yml            run the agent
//	regent validate -c regent.yml   check a config file and exit
//	regent generate-config [--dsn]  print a regent.yml (for a running PostgreSQL)
//	regent version                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/internal/buildinfo"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2 // bad flags or a bad config file
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprint(stdout, "regent ", buildinfo.Get())
		return exitOK
	case "validate":
		return validate(args, stdout, stderr)
	case "generate-config":
		return generateConfig(ctx, args, stdout, stderr)
	case "demo":
		fmt.Fprintln(stderr, "regent: the demo is its own binary now: regent-demo (make demo)")
		return exitUsage
	case "":
		return runAgent(ctx, args, stderr)
	}
	fmt.Fprintf(stderr, "regent: unknown command %q\n%s", cmd, usage)
	return exitUsage
}

const usage = `usage:
  regent -c regent.yml            run the agent
  regent validate -c regent.yml   check a config file
  regent generate-config [flags]  print a regent.yml (--dsn: for a running PostgreSQL)
  regent version                  print the version
`

// loadConfig loads the file of the -c flag; a bad flag or file is
// explained on stderr (exit 2).
func loadConfig(name string, args []string, stderr io.Writer) (*config.Config, string, bool) {
	path, ok := configFlag(name, args, stderr)
	if !ok {
		return nil, "", false
	}
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, path, err)
		return nil, "", false
	}
	return cfg, path, true
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (regent.yml)")
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, "regent: -c FILE is required\n"+usage)
		return "", false
	}
	return *path, true
}

func validate(args []string, stdout, stderr io.Writer) int {
	cfg, path, ok := loadConfig("validate", args, stderr)
	if !ok {
		return exitUsage
	}
	// Warnings do not fail the check: the operator may mean the line.
	for _, w := range cfg.Postgres.HBAWarnings() {
		fmt.Fprintf(stderr, "regent: warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return exitOK
}

func printConfigError(w io.Writer, path string, err error) {
	fmt.Fprintf(w, "regent: invalid config %s:\n", path)
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range flatten(err) {
			fmt.Fprintf(w, "  %s\n", e)
		}
		return
	}
	fmt.Fprintf(w, "  %s\n", err)
}

func flatten(err error) []error {
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		if e != nil {
			out = append(out, flatten(e)...)
		}
	}
	return out
}
