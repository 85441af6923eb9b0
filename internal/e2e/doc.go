// Package e2e holds Regent's end-to-end tests: real agent processes, real
// PostgreSQL servers and an embedded etcd, started by internal/testcluster.
// They run in the normal `go test ./...` (skipped with -short), one cluster
// at a time (never t.Parallel), each within about a minute on 2 cores.
//
// TestProductionDeployment follows docs/production.md instead: the page's
// own files and commands, each host in a network namespace of its own
// (internal/netns), so that the page cannot drift from what works.
//
// The tests observe the cluster only as operators and tools do (etcd keys,
// the REST API, SQL, patronictl); they must never import the agent's
// internals.
package e2e
