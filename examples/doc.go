// Package examples holds no code: it is the home of the operator-facing
// sample files (regent.yml, the systemd unit, haproxy.cfg, the Grafana
// dashboard, vip-manager configs) and of the tests that keep them, and
// the reference pages in docs/, true: the config parses and documents
// every key with its real default; the unit passes `systemd-analyze
// verify`; HAProxy accepts its file; the vip-manager files match the
// config; the dashboard queries only series Regent exports;
// docs/metrics.md lists every series and docs/cli.md every regentctl
// command and flag (the test builds regentctl and reads its --help).
//
// The tests read the files as an operator would copy them. They must never
// change the host: no unit installed, no port bound, no /dev/watchdog
// opened. The real-process HAProxy routing test lives in internal/e2e
// (ecosystem_test.go).
package examples
