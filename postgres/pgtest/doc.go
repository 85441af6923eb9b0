// Package pgtest provides Fake, an in-memory stand-in for the local
// PostgreSQL instance (the methods the agent calls on *postgres.Instance),
// for unit tests of the HA loop. It records every operation in order so a
// test can assert what happened first.
package pgtest
