package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// blackhole is an address where TCP connections are accepted and never
// answered, as by an etcd that hangs: the listener of a server that is
// never started, where the kernel completes the handshakes into the
// listen backlog and nobody reads.
func blackhole(t *testing.T) string {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestExitCodes(t *testing.T) {
	clearEnv(t)
	hole := blackhole(t)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"version", []string{"version"}, exitOK, ""},
		{"completion", []string{"completion", "bash"}, exitOK, ""},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown flag", []string{"list", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"extra argument", []string{"--etcd", "http://" + hole, "--scope", "demo", "list", "extra"}, exitUsage, "takes no arguments"},
		{"no etcd", []string{"list"}, exitFailed, "no etcd endpoints"},
		{"etcd hangs", []string{"--etcd", "http://" + hole, "--scope", "demo", "--timeout", "300ms", "list"}, exitFailed, "no answer within 300ms"},
		{"bad timeout", []string{"--etcd", "http://" + hole, "--scope", "demo", "--timeout", "0s", "list"}, exitUsage, "--timeout 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			start := time.Now()
			code := run(tc.args, strings.NewReader(""), &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, errOut.String(), tc.code, tc.stderr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestEveryRESTCallIsBounded(t *testing.T) {
	clearEnv(t)
	hang := newFakeMember(t, map[string][]answer{
		"PATCH /config": {{0, ""}}, "POST /failover": {{0, ""}}, "POST /restart": {{0, ""}},
		"POST /reload": {{0, ""}}, "POST /reinitialize": {{0, ""}}, "GET /decisions": {{0, ""}},
	})
	c := threeMembers(map[string]string{"pg1": hang.URL, "pg2": hang.URL, "pg3": hang.URL}, `{}`)
	for _, args := range [][]string{
		{"pause"}, {"edit-config", "-s", "ttl=5", "--force"}, {"failover", "--candidate", "pg2", "--force"},
		{"restart", "pg2", "--force"}, {"reload", "pg2", "--force"}, {"reinit", "pg2", "--force"}, {"decisions"},
	} {
		start := time.Now()
		r := ctlRun{loader: fixed(c)}.run(t, append([]string{"--timeout", "200ms"}, args...)...)
		if r.code != exitFailed || !strings.Contains(r.errOut+r.out, "no answer within 200ms") {
			t.Errorf("%v against a hung agent: exit %d, %v\n%s", args, r.code, r.err, r.out)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%v took %s with --timeout 200ms", args, d)
		}
	}
}

func TestLoaderErrorsFail(t *testing.T) {
	failing := func(context.Context) (*dcs.Cluster, error) { return nil, context.DeadlineExceeded }
	for _, args := range [][]string{{"list"}, {"topology"}, {"history"}, {"show-config"}, {"pause"}, {"restart", "--force"}} {
		if r := (ctlRun{loader: failing}).run(t, args...); r.code != exitFailed {
			t.Errorf("%v with etcd failing: exit %d", args, r.code)
		}
	}
}
