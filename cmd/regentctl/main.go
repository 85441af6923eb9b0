// Command regentctl is the operators' CLI for Regent clusters. It reads
// cluster state from etcd and sends commands to the agents' REST API.
//
//	regentctl --etcd http://127.0.0.1:2379 --scope demo list
//	regentctl -c /etc/regent/regent.yml list -o json
//	regentctl -c /etc/regent/regent.yml switchover --to pg2 --reason "kernel patching"
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "regentctl:", err)
		os.Exit(1)
	}
}
