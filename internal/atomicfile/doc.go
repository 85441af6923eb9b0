// Package atomicfile replaces files so that a reader sees the old content
// or the new one, never a partial file: PostgreSQL reading its
// configuration, PgBouncer reading a routing include, an operator's tool
// reading either.
//
// The data goes to a temporary file in the target's directory, is synced,
// given its mode (and, through a caller's function, its owner), and renamed
// over the target; the directory is synced after the rename so that a
// crash right after a write keeps it. On an error nothing is left behind.
//
// It owns only the write; what the files hold and who owns them belong to
// the caller. It imports nothing of Regent's, so any package can use it.
package atomicfile
