// Package pgroup runs an operator's command (a callback, a routing hook)
// in its own process group, so that a timeout or a cancellation kills
// the command and everything it started: a hook that forks a helper and
// hangs must not outlive its bound.
//
// The fencing package keeps its own copy (fencing/hook_unix.go): it
// imports nothing of ours by design.
package pgroup
