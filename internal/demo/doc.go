// Package demo runs a real local Regent cluster for `regent-demo`: an
// embedded etcd and N agents, each with its own PostgreSQL, in a temporary
// directory. Agents and PostgreSQL run as the `postgres` OS user when the
// demo is started as root. On return everything it started is stopped and
// the directory removed. With Options.Routing it also runs one PgBouncer
// and one HAProxy in front of the cluster, driven by every agent's
// routing: section (routing.go).
package demo
