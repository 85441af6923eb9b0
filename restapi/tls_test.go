package restapi

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startTLS runs s (TLS configured) on a free port until the test ends and
// returns its https base URL once the handshake works with probe.
func startTLS(t *testing.T, s *Server, probe *tls.Config) string {
	t.Helper()
	base, _ := serve(t, s, "https", httpsClient(probe))
	return base
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// call sends method base+path with optional credentials; the error is the
// transport's (a failed handshake).
func call(c *http.Client, method, url string, auth bool) (int, string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, "", err
	}
	if auth {
		req.SetBasicAuth(testUser, testPassword)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

func tlsServer(t *testing.T, p pki, verify string) *Server {
	cfg := Config{
		CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, CAFile: p.ca.File, VerifyClient: verify,
		Authentication: Authentication{Username: testUser, Password: testPassword},
		Listen:         "127.0.0.1:0", ConnectAddress: "127.0.0.1:8008",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	s := newCommandServer(t, allCommands(t), cfg).Server // probes on the fake clock, TLS on the real one
	s.Publish(primarySnap())
	return s
}

func TestTLSWithoutClientCertificates(t *testing.T) {
	p := newPKI(t)
	s := tlsServer(t, p, "none")
	if got := s.cfg.APIURL(); got != "https://127.0.0.1:8008/patroni" {
		t.Errorf("APIURL = %q, want https", got)
	}
	base := startTLS(t, s, p.clientTLS(t, nil))
	c := httpsClient(p.clientTLS(t, nil))
	if code, _, err := call(c, "GET", base+"/patroni", false); err != nil || code != 200 {
		t.Errorf("GET /patroni over https = %d, %v", code, err)
	}
	if code, body, err := call(c, "POST", base+"/reload", false); err != nil || code != 401 || body != "no auth header received" {
		t.Errorf("POST /reload without credentials = %d %q, %v", code, body, err)
	}
	if code, body, err := call(c, "POST", base+"/reload", true); err != nil || code != 200 {
		t.Errorf("POST /reload with credentials = %d %q, %v", code, body, err)
	}
	// A client that does not trust the CA refuses the server.
	if _, _, err := call(httpsClient(&tls.Config{MinVersion: tls.VersionTLS12}), "GET", base+"/patroni", false); err == nil {
		t.Error("a client without the CA accepted the server certificate")
	}
	// Plain http to the https port gets nothing useful.
	if code, _, err := call(&http.Client{Timeout: 5 * time.Second}, "GET", "http://"+strings.TrimPrefix(base, "https://")+"/patroni", false); err == nil && code == 200 {
		t.Error("plain http was served on the TLS port")
	}
}

func TestTLSClientCertificateOptional(t *testing.T) {
	p := newPKI(t)
	base := startTLS(t, tlsServer(t, p, "optional"), p.clientTLS(t, nil))
	anon := httpsClient(p.clientTLS(t, nil))
	withCert := httpsClient(p.clientTLS(t, &p.client))
	// Health checks need no certificate.
	if code, _, err := call(anon, "GET", base+"/primary", false); err != nil || code != 200 {
		t.Errorf("GET /primary without a client certificate = %d, %v", code, err)
	}
	// Writes do: 403 comes before the credentials are even looked at.
	if code, body, err := call(anon, "POST", base+"/reload", true); err != nil || code != 403 || body != "client certificate required" {
		t.Errorf("POST /reload without a client certificate = %d %q, %v", code, body, err)
	}
	if code, body, err := call(anon, "POST", base+"/reload", false); err != nil || code != 403 || body != "client certificate required" {
		t.Errorf("POST /reload without certificate nor credentials = %d %q, %v", code, body, err)
	}
	if code, body, err := call(withCert, "POST", base+"/reload", false); err != nil || code != 401 {
		t.Errorf("POST /reload with a certificate, without credentials = %d %q, %v", code, body, err)
	}
	if code, body, err := call(withCert, "POST", base+"/reload", true); err != nil || code != 200 {
		t.Errorf("POST /reload with a certificate and credentials = %d %q, %v", code, body, err)
	}
	// A certificate from another CA is not offered (Go's client sends only
	// one that matches the server's CAs) or fails the handshake: either
	// way, it opens no write.
	code, body, err := call(httpsClient(p.clientTLS(t, &p.stranger)), "POST", base+"/reload", true)
	if err == nil && (code != 403 || body != "client certificate required") {
		t.Errorf("POST /reload with a certificate from an unknown CA = %d %q", code, body)
	}
}

func TestTLSClientCertificateRequired(t *testing.T) {
	p := newPKI(t)
	s := tlsServer(t, p, "required")
	base := startTLS(t, s, p.clientTLS(t, &p.client))
	if _, _, err := call(httpsClient(p.clientTLS(t, nil)), "GET", base+"/primary", false); err == nil {
		t.Error("a client without a certificate completed the handshake")
	}
	if _, _, err := call(httpsClient(p.clientTLS(t, &p.stranger)), "GET", base+"/primary", false); err == nil {
		t.Error("a client with a certificate from an unknown CA completed the handshake")
	}
	withCert := httpsClient(p.clientTLS(t, &p.client))
	if code, _, err := call(withCert, "GET", base+"/primary", false); err != nil || code != 200 {
		t.Errorf("GET /primary with a certificate = %d, %v", code, err)
	}
	if code, _, err := call(withCert, "DELETE", base+"/restart", true); err != nil || code != 200 {
		t.Errorf("DELETE /restart with a certificate and credentials = %d, %v", code, err)
	}
	// A peer member (same CA, its own certificate) gets through with PeerTLSConfig.
	peer := Config{CertFile: p.client.CertFile, KeyFile: p.client.KeyFile, CAFile: p.ca.File}
	pcfg, err := peer.PeerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := call(httpsClient(pcfg), "GET", base+"/patroni", false); err != nil || code != 200 {
		t.Errorf("peer GET /patroni = %d, %v", code, err)
	}
}

func TestRunRefusesBrokenTLSFiles(t *testing.T) {
	p := newPKI(t)
	s := New(Options{Config: Config{Listen: freeAddr(t), CertFile: p.server.CertFile, KeyFile: p.client.KeyFile}})
	err := s.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "restapi.keyfile") {
		t.Errorf("Run with a mismatched key = %v, want an error naming restapi.keyfile", err)
	}
}

func TestTLSConfigValidation(t *testing.T) {
	p := newPKI(t)
	notPEM := filepath.Join(p.dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(p.dir, "missing.pem")
	base := Config{Listen: "127.0.0.1:8008", ConnectAddress: "127.0.0.1:8008"}
	with := func(mod func(*Config)) Config { c := base; mod(&c); return c }
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"plain", base, ""},
		{"tls", with(func(c *Config) { c.CertFile, c.KeyFile = p.server.CertFile, p.server.KeyFile }), ""},
		{"tls verify required", with(func(c *Config) {
			c.CertFile, c.KeyFile, c.CAFile, c.VerifyClient = p.server.CertFile, p.server.KeyFile, p.ca.File, "required"
		}), ""},
		{"verify none without tls", with(func(c *Config) { c.VerifyClient = "none" }), ""},
		{"certfile alone", with(func(c *Config) { c.CertFile = p.server.CertFile }), "restapi.certfile: set without restapi.keyfile"},
		{"keyfile alone", with(func(c *Config) { c.KeyFile = p.server.KeyFile }), "restapi.keyfile: set without restapi.certfile"},
		{"certfile missing", with(func(c *Config) { c.CertFile, c.KeyFile = missing, p.server.KeyFile }), "restapi.certfile: open " + missing},
		{"keyfile missing", with(func(c *Config) { c.CertFile, c.KeyFile = p.server.CertFile, missing }), "restapi.keyfile: open " + missing},
		{"certfile not PEM", with(func(c *Config) { c.CertFile, c.KeyFile = notPEM, p.server.KeyFile }), "restapi.certfile: no PEM certificate"},
		{"key of another cert", with(func(c *Config) { c.CertFile, c.KeyFile = p.server.CertFile, p.client.KeyFile }), "restapi.keyfile:"},
		{"cafile missing", with(func(c *Config) { c.CAFile = missing }), "restapi.cafile: open " + missing},
		{"cafile not PEM", with(func(c *Config) { c.CAFile = notPEM }), "restapi.cafile: no PEM certificate"},
		{"verify_client unknown", with(func(c *Config) { c.VerifyClient = "always" }), `restapi.verify_client: "always" is not none, optional or required`},
		{"verify_client without tls", with(func(c *Config) { c.VerifyClient, c.CAFile = "required", p.ca.File }), `restapi.verify_client: "required" needs TLS`},
		{"verify_client without cafile", with(func(c *Config) {
			c.CertFile, c.KeyFile, c.VerifyClient = p.server.CertFile, p.server.KeyFile, "optional"
		}), `restapi.verify_client: "optional" needs restapi.cafile`},
		{"username alone", with(func(c *Config) { c.Authentication.Username = "admin" }), "restapi.authentication.username: set without restapi.authentication.password"},
		{"password alone", with(func(c *Config) { c.Authentication.Password = "x" }), "restapi.authentication.password: set without restapi.authentication.username"},
		{"username with colon", with(func(c *Config) { c.Authentication = Authentication{Username: "a:b", Password: "x"} }), "restapi.authentication.username: must not contain ':'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkValidate(t, tc.cfg, tc.wantErr) })
	}
}
