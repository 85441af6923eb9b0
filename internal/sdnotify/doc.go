// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): one datagram of newline-separated KEY=VALUE lines
// ("READY=1", "STATUS=…", "WATCHDOG=1", "STOPPING=1") to the unix datagram
// socket named by $NOTIFY_SOCKET, which systemd sets for a unit with
// Type=notify. A name starting with '@' is an abstract socket.
//
// It owns that socket and the WATCHDOG_USEC/WATCHDOG_PID variables and
// nothing else: what to say and when is the caller's (cmd/regent, driven
// by the agent's loop). It is the protocol only, a few dozen lines, so the
// agent needs no systemd library.
package sdnotify
