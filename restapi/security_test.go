package restapi

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testpki"
)

func TestConfigRefusesUnauthenticatedExposure(t *testing.T) {
	p := newPKI(t)
	auth := Authentication{Username: "u", Password: "p"}
	cases := []struct {
		name    string
		cfg     Config
		wantErr []string // nil = valid
	}{
		{"loopback v4", Config{Listen: "127.0.0.1:8008"}, nil},
		{"loopback v4 other", Config{Listen: "127.0.0.2:8008", ConnectAddress: "127.0.0.2:8008"}, nil},
		{"loopback v6", Config{Listen: "[::1]:8008", ConnectAddress: "[::1]:8008"}, nil},
		{"localhost", Config{Listen: "localhost:8008", ConnectAddress: "localhost:8008"}, nil},
		{"wildcard", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008"},
			[]string{"restapi.listen: 0.0.0.0:8008 is not a loopback address", "restapi.authentication",
				"restapi.verify_client", "restapi.allow_unauthenticated: true"}},
		{"empty host", Config{Listen: ":8008", ConnectAddress: "10.0.0.1:8008"}, []string{"restapi.listen: :8008 is not a loopback"}},
		{"v6 wildcard", Config{Listen: "[::]:8008", ConnectAddress: "[fd00::1]:8008"}, []string{"restapi.listen: [::]:8008"}},
		{"private address", Config{Listen: "10.0.0.1:8008"}, []string{"restapi.listen: 10.0.0.1:8008"}},
		{"host name", Config{Listen: "pg1.example.com:8008"}, []string{"restapi.listen: pg1.example.com:8008"}},
		{"with authentication", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008", Authentication: auth}, nil},
		{"risk accepted", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008", AllowUnauthenticated: true}, nil},
		{"client certificates required", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008",
			CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, CAFile: p.ca.File, VerifyClient: VerifyClientRequired}, nil},
		{"client certificates optional", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008",
			CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, CAFile: p.ca.File, VerifyClient: VerifyClientOptional}, nil},
		{"TLS alone is not authentication", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008",
			CertFile: p.server.CertFile, KeyFile: p.server.KeyFile}, []string{"restapi.listen: 0.0.0.0:8008"}},
		{"allowlist alone is not authentication", Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008",
			Allowlist: []string{"10.0.0.0/8"}}, []string{"restapi.listen: 0.0.0.0:8008"}},
		{"allowlist entries", Config{Listen: "127.0.0.1:8008", Allowlist: []string{"10.0.0.0/8", "192.0.2.7", "::1", "fd00::/8"}}, nil},
		{"bad allowlist entry", Config{Listen: "127.0.0.1:8008", Allowlist: []string{"10.0.0.0/8", "pg1.example.com", "10.0.0.0/33"}},
			[]string{`restapi.allowlist[1]: "pg1.example.com" is not an IP address or a CIDR network`, `restapi.allowlist[2]: "10.0.0.0/33"`}},
		{"negative max_streams", Config{Listen: "127.0.0.1:8008", MaxStreams: -1}, []string{"restapi.max_streams: -1 is negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.SetDefaults()
			checkValidate(t, tc.cfg, tc.wantErr...)
		})
	}
}

// fakeMembers returns fixed api_url hosts.
type fakeMembers []string

func (f fakeMembers) MemberHosts() []string { return f }

// sendFrom runs one request through h from the client address addr.
func sendFrom(t *testing.T, h http.Handler, method, path, addr string, mod func(*http.Request)) response {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, nil)
	req.RemoteAddr = addr
	if mod != nil {
		mod(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func TestAllowlistGuardsWrites(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		members Members
		from    string
		want    int
	}{
		{"no allowlist: open", Config{}, nil, "203.0.113.9:5000", 200},
		{"inside a network", Config{Allowlist: []string{"10.0.0.0/8"}}, nil, "10.20.30.40:5000", 200},
		{"an address", Config{Allowlist: []string{"192.0.2.7"}}, nil, "192.0.2.7:5000", 200},
		{"outside", Config{Allowlist: []string{"10.0.0.0/8", "192.0.2.7"}}, nil, "192.0.2.8:5000", 403},
		{"IPv4-mapped client", Config{Allowlist: []string{"192.0.2.7"}}, nil, "[::ffff:192.0.2.7]:5000", 200},
		{"IPv6", Config{Allowlist: []string{"fd00::/8"}}, nil, "[fd00::1]:5000", 200},
		{"member address", Config{AllowlistIncludeMembers: true}, fakeMembers{"192.0.2.20", "192.0.2.21"}, "192.0.2.21:5000", 200},
		{"member host name", Config{AllowlistIncludeMembers: true}, fakeMembers{"localhost"}, "127.0.0.1:5000", 200},
		{"not a member", Config{AllowlistIncludeMembers: true}, fakeMembers{"192.0.2.20"}, "192.0.2.22:5000", 403},
		{"members without a view", Config{AllowlistIncludeMembers: true}, fakeMembers(nil), "192.0.2.20:5000", 403},
		{"members and a network", Config{Allowlist: []string{"10.0.0.0/8"}, AllowlistIncludeMembers: true},
			fakeMembers{"192.0.2.20"}, "10.1.1.1:5000", 200},
		{"members ignored unless asked", Config{Allowlist: []string{"10.0.0.0/8"}}, fakeMembers{"192.0.2.20"}, "192.0.2.20:5000", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := allCommands(t)
			ts := newCommandServer(t, f, tc.cfg)
			ts.members = tc.members
			r := sendFrom(t, ts.Handler(), "POST", "/reload", tc.from, nil)
			if r.code != tc.want {
				t.Fatalf("POST /reload from %s = %d %q, want %d", tc.from, r.code, r.body, tc.want)
			}
			if tc.want == 403 {
				if e := errorOf(t, r); e.Error != "Access is denied" {
					t.Errorf("403 body = %q, want the JSON error \"Access is denied\"", r.body)
				}
				if len(f.Calls()) != 0 {
					t.Errorf("a refused write reached the agent: %v", f.Calls())
				}
				// Reads stay open from anywhere (health checks).
				if g := sendFrom(t, ts.Handler(), "GET", "/patroni", tc.from, nil); g.code == 403 {
					t.Errorf("GET /patroni from outside the allowlist = 403, want it open")
				}
			}
		})
	}
}

// The allowlist comes first, as in Patroni: an outsider with the right
// password is refused 403, an insider with a wrong one gets 401.
func TestAllowlistBeforeAuthentication(t *testing.T) {
	ts := newCommandServer(t, allCommands(t), Config{Allowlist: []string{"10.0.0.0/8"},
		Authentication: Authentication{Username: testUser, Password: testPassword}})
	right := func(r *http.Request) { r.SetBasicAuth(testUser, testPassword) }
	wrong := func(r *http.Request) { r.SetBasicAuth(testUser, "nope") }
	for _, tc := range []struct {
		from string
		mod  func(*http.Request)
		want int
	}{
		{"192.0.2.1:1", right, 403}, {"10.0.0.1:1", wrong, 401}, {"10.0.0.1:1", right, 200},
	} {
		if r := sendFrom(t, ts.Handler(), "POST", "/reload", tc.from, tc.mod); r.code != tc.want {
			t.Errorf("POST /reload from %s = %d %q, want %d", tc.from, r.code, r.body, tc.want)
		}
	}
}

func TestFailedLoginsThrottled(t *testing.T) {
	ts := newCommandServer(t, allCommands(t), Config{Authentication: Authentication{Username: testUser, Password: testPassword}})
	h := ts.Handler()
	right := func(r *http.Request) { r.SetBasicAuth(testUser, testPassword) }
	wrong := func(r *http.Request) { r.SetBasicAuth(testUser, "guess") }
	const a, b = "192.0.2.1:1000", "192.0.2.2:1000"
	post := func(from string, mod func(*http.Request)) response {
		t.Helper()
		return sendFrom(t, h, "POST", "/reload", from, mod)
	}
	for i := range maxLoginFailures - 1 {
		if r := post(a, wrong); r.code != 401 {
			t.Fatalf("wrong password #%d from A = %d, want 401", i+1, r.code)
		}
	}
	// Another client's success changes nothing for A.
	if r := post(b, right); r.code != 200 {
		t.Fatalf("right password from B = %d, want 200", r.code)
	}
	if r := post(a, wrong); r.code != 401 {
		t.Fatalf("wrong password #%d from A = %d, want 401", maxLoginFailures, r.code)
	}
	// A is blocked now, even with the right password; B is not.
	r := post(a, right)
	if r.code != http.StatusTooManyRequests {
		t.Fatalf("right password from blocked A = %d %q, want 429", r.code, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After = %q, want 60", got)
	}
	if e := errorOf(t, r); !strings.Contains(e.Error, "too many failed logins") {
		t.Errorf("429 body = %q", r.body)
	}
	if r := post(b, right); r.code != 200 {
		t.Errorf("B while A is blocked = %d, want 200", r.code)
	}
	ts.clock.Set(t0.Add(30 * time.Second))
	if got := post(a, right).header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After after 30 s = %q, want 30", got)
	}
	ts.clock.Set(t0.Add(loginBlock))
	if r := post(a, right); r.code != 200 {
		t.Errorf("A after the block = %d, want 200", r.code)
	}
	// A fresh window: one more failure does not block again.
	if r := post(a, wrong); r.code != 401 {
		t.Errorf("one wrong password after the block = %d, want 401", r.code)
	}
	if r := post(a, right); r.code != 200 {
		t.Errorf("A after one new failure = %d, want 200", r.code)
	}
}

func TestLoginThrottleBoundedMemory(t *testing.T) {
	th := newLoginThrottle(8)
	now := t0
	for i := range 100 {
		now = now.Add(time.Millisecond)
		th.fail(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)}), now)
		if n := th.tracked(); n > 8 {
			t.Fatalf("tracked %d addresses after %d, want at most 8", n, i+1)
		}
	}
	// The newest address is still counted, and blocks at the limit.
	last := netip.AddrFrom4([4]byte{10, 0, 0, 99})
	for range maxLoginFailures - 1 {
		th.fail(last, now)
	}
	if th.blocked(last, now) == 0 {
		t.Error("the newest address was evicted before the older ones")
	}
}

func TestEventStreamsCapped(t *testing.T) {
	fd := newFeed(testRecord("running", 1, ""))
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: fd.Watch})
	ts.cfg.MaxStreams = 2
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)
	// open starts a stream; the test's end closes what is left open,
	// before the server (cleanups run last in, first out).
	open := func() (int, http.Header, io.ReadCloser) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/switchover/20261122-030512-4f2a/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp.StatusCode, resp.Header, resp.Body
	}
	var streams []io.ReadCloser
	for i := range 2 {
		code, _, body := open()
		if code != 200 {
			t.Fatalf("stream %d = %d, want 200", i+1, code)
		}
		// The first event arrived: the stream holds its slot.
		if _, err := bufio.NewReader(body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, body)
	}
	code, header, body := open()
	var e errorBody
	if code != 503 || json.NewDecoder(body).Decode(&e) != nil || !strings.Contains(e.Error, "too many event streams") {
		t.Fatalf("third stream = %d %+v, want 503 \"too many event streams\"", code, e)
	}
	if header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// Closing one frees its slot.
	streams[0].Close()
	waitFor(t, func() bool { return ts.streams.Load() < 2 })
	if code, _, _ := open(); code != 200 {
		t.Fatalf("stream after one closed = %d, want 200", code)
	}
}

func TestTLSReloadServesNewestPair(t *testing.T) {
	p := newPKI(t)
	certFile, keyFile := p.dir+"/live.crt", p.dir+"/live.key"
	install := func(from testpki.Pair) {
		t.Helper()
		copyFile(t, from.CertFile, certFile)
		copyFile(t, from.KeyFile, keyFile)
	}
	install(p.server)
	ts := newCommandServer(t, allCommands(t), Config{CertFile: certFile, KeyFile: keyFile,
		Listen: "127.0.0.1:0", ConnectAddress: "127.0.0.1:8008"})
	ts.Publish(primarySnap())
	s := ts.Server
	base := startTLS(t, s, p.clientTLS(t, nil))
	serial := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), p.clientTLS(t, nil))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	renewed := p.ca.Issue(t, p.dir, "renewed")
	install(renewed)
	if err := s.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	second := serial()
	if second == first {
		t.Fatalf("after ReloadTLS the server still serves serial %s", first)
	}
	if want := certSerial(t, renewed); second != want {
		t.Errorf("served serial %s, want the new pair's %s", second, want)
	}
	// A broken pair (the key of another certificate) is refused and the
	// current one stays in use.
	copyFile(t, p.client.KeyFile, keyFile)
	if err := s.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "restapi.keyfile") {
		t.Errorf("ReloadTLS with a mismatched key = %v, want an error naming restapi.keyfile", err)
	}
	if got := serial(); got != second {
		t.Errorf("after a failed reload the server serves %s, want %s kept", got, second)
	}
	if !strings.Contains(ts.logs.String(), "TLS certificate not reloaded") {
		t.Errorf("the failed reload was not logged")
	}
}

// copyFile copies src over dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, data, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// certSerial is the serial number of c's certificate.
func certSerial(t *testing.T, c testpki.Pair) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf.SerialNumber.String()
}
