// Package lenient reads the loosely typed values Patroni-compatible
// documents hold — tags, the dynamic config key, request bodies — the way
// Patroni does: "on", "yes" and 1 are true, "20" is a number. Every
// package that reads such a value (config, dcs, restapi, agent,
// regentctl) uses these functions, so a tag or a key means the same
// thing wherever it is read.
//
// It owns only the conversions; what a key means and its range belong to
// the caller. It imports nothing of Regent's, so any package can use it.
package lenient
