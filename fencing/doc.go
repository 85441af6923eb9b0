// Package fencing keeps a primary that lost its lease from accepting writes.
//
// It owns:
//   - the `watchdog:` configuration ([Config]) and the timing rule that ties
//     the device timeout to the lease ([CheckTiming], [DeviceTimeout]);
//   - [Watchdog], the arm / keepalive / disarm policy over a [Device] in the
//     modes off, automatic and required;
//   - the Linux device ([OpenLinux]: open, WDIOC_SETTIMEOUT, read back with
//     WDIOC_GETTIMEOUT, WDIOC_KEEPALIVE, magic close) and, in fencingtest, a
//     fake device with an injected clock;
//   - the external fence hook ([HookConfig], the `fence:` section): a
//     STONITH command run, with a timeout, before a candidate promotes over a
//     leader that did not release.
//
// fencing never talks to etcd or PostgreSQL and imports no other Regent
// package; the HA loop drives it. Nothing here starts a goroutine that pings
// the device: keepalives come only from the HA loop, right after an
// acknowledged lease renewal, so a stuck loop leads to a reset. Tests never
// open a real watchdog device.
package fencing
