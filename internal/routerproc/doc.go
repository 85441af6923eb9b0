// Package routerproc holds what the demo (internal/demo) and the
// end-to-end tests (internal/e2e) share to run a local PgBouncer and
// HAProxy in front of a cluster: finding the Debian binaries, and the
// configuration text each is started with. Starting and stopping the
// processes stays with each caller (the tests tie them to testing.T, the
// demo to its own Close).
package routerproc
