// Package linkproxy is the userspace TCP link of the real-process test
// harnesses: a proxy that forwards every connection accepted on its
// listener to one upstream, through which an agent reaches etcd.
// internal/testcluster gives every node one on 127.0.0.1 (to cut one agent
// off from etcd while the others still reach it); internal/chaos gives
// every node one per etcd member, listening and dialing inside the node's
// network namespace (the caller's listener and dialer decide where), to
// add latency or loss where the kernel has no netem qdisc.
//
// A link does three things to the bytes it copies:
//   - Shape: every chunk is delayed by a fixed latency in each direction,
//     and a share of them "lost" the way TCP shows a lost segment: it
//     arrives a retransmission timeout late and everything behind it
//     waits (order is kept).
//   - Cut: a blackhole, as a partition is to TCP: nothing is closed and
//     nothing passes. Connections open at the cut stop forwarding both
//     ways; new ones are accepted and never forwarded, so a client's calls
//     hang until their own deadlines rather than fail fast.
//   - Heal: every connection the cut held is closed (nothing held is
//     delivered late; the client reconnects, as after a partition that
//     outlasted its keepalive) and traffic flows again.
//
// Every goroutine of a Proxy ends by the time Close returns. It never
// sleeps in place of an event but one place: Cut polls, microseconds
// apart and up to a bound, for the writes that passed its check.
package linkproxy
