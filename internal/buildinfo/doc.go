// Package buildinfo holds the version every Regent binary reports: the
// agent publishes it in its member key and GET /patroni, and regent,
// regentctl and regent-demo print it (with the commit, build date and Go
// release) for `version`.
//
// The Makefile sets Version, Commit and Date with -ldflags from git; a
// plain `go build` reports DefaultVersion and whatever commit the Go
// toolchain stamped into the binary.
//
// It owns nothing else and imports only the standard library, so any
// package — a client that must not link the agent included — can read it.
package buildinfo
