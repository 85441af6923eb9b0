// Package etcdembed runs etcd's server in-process: one member or a
// cluster of them, on 127.0.0.1 ports picked at run time, for the tests,
// the benchmarks, the fault-injection suite and `regent-demo`; or one
// member from an etcd configuration file (StartFile), for the test that
// deploys docs/production.md's etcd files as written.
//
// It is kept apart from package dcs so that the agent's binary does not
// link etcd's server: the agent only ever talks to etcd as a client. It
// must never be imported by the agent, dcs or anything `regent` links.
package etcdembed
