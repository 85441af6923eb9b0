// Package netns builds throwaway test networks out of Linux network
// namespaces: a bridge in the root namespace with a private /24 of
// 10.201.0.0/16, and one namespace per host joined to it by a veth pair.
// Processes started in a host's namespace (proc.Netns(h.Path)) listen on
// the host's own address, so every host can use the same well-known ports.
// It can cut links (blackhole routes) and unplug hosts for fault
// injection. The chaos suite and the production-deployment e2e test use it.
//
// It needs root and iproute2. Every name it creates starts with "rgc",
// the creating process's pid in base 36 and a dash, so that New first
// sweeps what a dead run left behind (its processes, namespaces, veths,
// bridge) and never touches a live run's. It must never address anything
// outside the bridge and the namespaces it created.
package netns
