package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/genconfig"
)

// inspectTimeout bounds connecting to PostgreSQL and reading it.
const inspectTimeout = 30 * time.Second

const generateUsage = `usage: regent generate-config [flags]

Prints a regent.yml. With --dsn, for the PostgreSQL running at that DSN (as
a superuser; PG* environment variables apply as for psql): its data
directory, binaries, listen address, parameters and pg_hba.conf rules.
Without --dsn, a sample for a new member. Check it with regent validate.

flags:
`

// generateConfig is `regent generate-config` (Patroni 3.2's --generate-config).
func generateConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("generate-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "", "connection to the running PostgreSQL, e.g. 'host=/var/run/postgresql user=postgres' (none: a sample)")
	var o genconfig.Options
	fs.StringVar(&o.Scope, "scope", "", "cluster name (default: the server's cluster_name, else main)")
	fs.StringVar(&o.Name, "name", "", "member name (default: the host name)")
	fs.StringVar(&o.Namespace, "namespace", "", "etcd key prefix (default /service/)")
	etcd := fs.String("etcd", "", "etcd client URLs, comma-separated (default http://127.0.0.1:2379)")
	fs.StringVar(&o.ConnectHost, "connect-host", "", "address other members reach this host at (default: 127.0.0.1, marked CHECK)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "PostgreSQL binaries (default: the running postmaster's directory)")
	fs.Usage = func() { fmt.Fprint(stderr, generateUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "regent generate-config: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *etcd != "" {
		o.Etcd = strings.Split(*etcd, ",")
	}
	if o.Name == "" {
		host, err := os.Hostname()
		host, _, _ = strings.Cut(host, ".")
		if err != nil || host == "" {
			fmt.Fprintf(stderr, "regent generate-config: no host name (%v): pass --name\n", err)
			return exitUsage
		}
		o.Name = host
	}
	var src *genconfig.Source
	if *dsn != "" {
		ictx, cancel := context.WithTimeout(ctx, inspectTimeout)
		defer cancel()
		var err error
		if src, err = genconfig.Inspect(ictx, *dsn); err != nil {
			fmt.Fprintf(stderr, "regent generate-config: %v\n", err)
			return exitFailed
		}
	}
	out, err := genconfig.Render(o, src)
	if err != nil {
		fmt.Fprintf(stderr, "regent generate-config: %v\n", err)
		return exitUsage
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "regent generate-config: %v\n", err)
		return exitFailed
	}
	return exitOK
}
