// Package buildinfo holds the version every Regent binary reports: the
// agent publishes it in its member key and GET /patroni, and regent,
// regentctl and regent-demo print it for -version.
//
// It owns nothing else and imports nothing, so any package — a client
// that must not link the agent included — can read it.
package buildinfo
