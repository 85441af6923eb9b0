// Package scale is bench's etcd scale measurement: N clusters of three
// in-process agents (agent.New with a fake PostgreSQL, the real dcs
// client, no REST server), each its own scope, on one embedded etcd, and
// etcd's load per node as N grows.
//
// It is a package of its own because it links the agent: package bench
// drives real processes and reads their REST API like any client, and
// must not. bench's tests hand Run to bench.Run as Params.Scale.
//
// It never leaves an agent or an etcd behind: both live until the
// test's end, and the cleanup waits for every agent before etcd closes.
package scale
