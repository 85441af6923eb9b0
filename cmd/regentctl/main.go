// Command regentctl is the operators' CLI for Regent clusters. It reads
// cluster state from etcd and sends commands to the agents' REST API.
//
//	regentctl --etcd http://127.0.0.1:2379 --scope demo list
//	regentctl -c /etc/regent/regent.yml list -o json
//	regentctl -c /etc/regent/regent.yml switchover --to pg2 --reason "kernel patching"
//	regentctl -c /etc/regent/regent.yml edit-config -p max_connections=200
//
// Exit status: 0 on success, 1 when the command failed or was refused, 2
// for a usage error (unknown command or flag, bad arguments).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one regentctl invocation and returns its exit status.
// Ctrl-C (or SIGTERM) cancels the command's context.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetIn(stdin)
	root.SetArgs(args)
	return exitCode(root.ExecuteContext(ctx), stderr)
}
