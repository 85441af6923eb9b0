// Command chaos-etcd runs one embedded etcd member (etcdembed.Start) for
// the chaos suite, which starts it inside a network namespace of its own.
// It prints "chaos-etcd: ready" once the member serves clients and runs
// until SIGTERM or SIGINT (the suite SIGKILLs it to inject member loss and
// starts it again with the same flags and data directory to heal).
//
//	chaos-etcd -name etcd1 -dir DIR -client-url http://10.201.7.21:2379 \
//	  -peer-url http://10.201.7.21:2380 -initial-cluster etcd1=…,etcd2=…,etcd3=…
//
// With -config-file it runs the member an etcd configuration file
// describes instead (the file `etcd --config-file` reads, with etcd's own
// parser; TLS and all), refusing keys etcd does not know: the production
// e2e test runs docs/production.md's etcd files this way.
//
//	chaos-etcd -config-file /etc/etcd/etcd.conf.yml
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/regent-ha/regent/internal/etcdembed"
)

// startTimeout bounds the wait for a quorum at start (the suite starts the
// three members together; a restarted one replays its WAL).
const startTimeout = 60 * time.Second

func main() {
	os.Exit(run())
}

func run() int {
	var cfg etcdembed.Config
	var file string
	flag.StringVar(&file, "config-file", "", "an etcd configuration file (instead of the other flags)")
	flag.StringVar(&cfg.Name, "name", "", "member name")
	flag.StringVar(&cfg.Dir, "dir", "", "data directory")
	flag.StringVar(&cfg.ClientURL, "client-url", "", "client URL")
	flag.StringVar(&cfg.PeerURL, "peer-url", "", "peer URL")
	flag.StringVar(&cfg.InitialCluster, "initial-cluster", "", "name=peerURL,…")
	flag.Parse()
	if file == "" && (cfg.Name == "" || cfg.Dir == "" || cfg.ClientURL == "" || cfg.PeerURL == "" || cfg.InitialCluster == "") {
		fmt.Fprintln(os.Stderr, "chaos-etcd: -config-file, or -name, -dir, -client-url, -peer-url and -initial-cluster, are required")
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var e *etcdembed.Server
	var err error
	if file != "" {
		e, err = etcdembed.StartFile(startCtx, file)
	} else {
		e, err = etcdembed.Start(startCtx, cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos-etcd: %v\n", err)
		return 1
	}
	fmt.Println("chaos-etcd: ready")
	<-ctx.Done()
	e.Close()
	return 0
}
