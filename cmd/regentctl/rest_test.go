package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-ha/regent/cmd/internal/testconfig"
	"github.com/regent-ha/regent/internal/testpki"
	"github.com/regent-ha/regent/restapi"
)

// configAgent is a restapi.Commands that accepts every config patch.
type configAgent struct {
	patches recorder[string]
}

func (a *configAgent) PatchConfig(_ context.Context, p json.RawMessage, _ int64) (json.RawMessage, error) {
	a.patches.add(string(p))
	return json.RawMessage(`{"pause":true}`), nil
}

func (a *configAgent) count() int { return len(a.patches.all()) }

func (a *configAgent) PutConfig(context.Context, json.RawMessage, int64) (json.RawMessage, error) {
	return nil, &restapi.HTTPError{Status: 502, Message: "not in this test"}
}
func (a *configAgent) Restart(context.Context, restapi.RestartRequest) (int, string) { return 503, "" }
func (a *configAgent) CancelRestart(context.Context) (int, string)                   { return 404, "" }
func (a *configAgent) Reload(context.Context) (int, string)                          { return 202, "reload scheduled" }
func (a *configAgent) Reinitialize(context.Context, bool) (int, string)              { return 503, "" }

// agentServer is a real restapi.Server with authentication, over http.
func agentServer(t *testing.T, cfg restapi.Config) (*configAgent, *restapi.Server) {
	t.Helper()
	a := &configAgent{}
	return a, restapi.New(restapi.Options{Config: cfg, Commands: a})
}

var adminAuth = restapi.Authentication{Username: "admin", Password: "s3cret"}

// clearEnv unsets the REGENT_* variables a developer's shell may have.
func clearEnv(t *testing.T) {
	for _, name := range append([]string{"REGENT_CONFIG", "REGENT_ETCD", "REGENT_SCOPE", "REGENT_NAMESPACE"}, mapValues(restEnv)...) {
		t.Setenv(name, "")
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestBasicAuthFromFlagsEnvAndConfigFile(t *testing.T) {
	clearEnv(t)
	a, srv := agentServer(t, restapi.Config{Authentication: adminAuth})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	run := ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": ts.URL}, `{}`))}

	r := run.run(t, "pause")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "no auth header received (HTTP 401)") {
		t.Errorf("without credentials: exit %d, %v", r.code, r.err)
	}
	r = run.run(t, "--user", "admin", "--password", "wrong", "pause")
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "not authenticated (HTTP 401)") {
		t.Errorf("wrong password: exit %d, %v", r.code, r.err)
	}
	if r = run.run(t, "--user", "admin", "--password", "s3cret", "pause"); r.err != nil {
		t.Errorf("--user/--password: %v", r.err)
	}
	if r = run.run(t, "--user", "admin", "pause"); r.code != exitFailed || !strings.Contains(r.err.Error(), "without a password") {
		t.Errorf("--user alone: exit %d, %v", r.code, r.err)
	}

	t.Setenv("REGENT_API_USER", "admin")
	t.Setenv("REGENT_API_PASSWORD", "s3cret")
	if r = run.run(t, "pause"); r.err != nil {
		t.Errorf("$REGENT_API_USER/PASSWORD: %v", r.err)
	}
	if r = run.run(t, "--password", "wrong", "pause"); r.code != exitFailed {
		t.Errorf("--password overrides the environment: exit %d, %v", r.code, r.err)
	}
	t.Setenv("REGENT_API_USER", "")
	t.Setenv("REGENT_API_PASSWORD", "")

	t.Setenv("RESTPW", "s3cret")
	cfgFile := writeRegentYAML(t, "  authentication: {username: admin, password: ${RESTPW}}\n")
	if r = run.run(t, "-c", cfgFile, "pause"); r.err != nil {
		t.Errorf("restapi.authentication from -c: %v", r.err)
	}
	if n := a.count(); n != 3 {
		t.Errorf("%d authenticated patches reached the agent, want 3", n)
	}
	if strings.Contains(r.out+r.errOut, "s3cret") {
		t.Errorf("the password was printed: %s %s", r.out, r.errOut)
	}
}

// writeRegentYAML writes a valid regent.yml with extra lines in its
// restapi section.
func writeRegentYAML(t *testing.T, restapiExtra string) string {
	t.Helper()
	return testconfig.Write(t, testconfig.LoopbackAPI+restapiExtra, "")
}

// certs is a CA with a server certificate for 127.0.0.1 and a client one.
type certs struct {
	caFile string
	client testpki.Pair
	server tls.Certificate
	pool   *x509.CertPool
}

func newCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "test-ca")
	server := ca.Issue(t, dir, "server")
	c := certs{caFile: ca.File, client: ca.Issue(t, dir, "client"), pool: ca.Pool()}
	var err error
	if c.server, err = tls.LoadX509KeyPair(server.CertFile, server.KeyFile); err != nil {
		t.Fatal(err)
	}
	return c
}

// tlsAgent serves a restapi.Server over https; clientAuth as given.
func tlsAgent(t *testing.T, c certs, clientAuth tls.ClientAuthType, verify string) (*configAgent, string) {
	t.Helper()
	a, srv := agentServer(t, restapi.Config{Authentication: adminAuth, VerifyClient: verify})
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{c.server}, ClientCAs: c.pool, ClientAuth: clientAuth, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return a, ts.URL
}

func TestRESTOverTLS(t *testing.T) {
	clearEnv(t)
	c := newCerts(t)
	a, url := tlsAgent(t, c, tls.NoClientCert, "none")
	run := ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": url}, `{}`))}
	auth := []string{"--user", "admin", "--password", "s3cret"}

	r := run.run(t, append(auth, "pause")...)
	if r.code != exitFailed || !strings.Contains(r.err.Error(), "certificate") {
		t.Errorf("https without the CA: exit %d, %v", r.code, r.err)
	}
	if r = run.run(t, append(auth, "--cacert", c.caFile, "pause")...); r.err != nil {
		t.Errorf("--cacert: %v", r.err)
	}
	if r = run.run(t, append(auth, "--insecure", "pause")...); r.err != nil {
		t.Errorf("--insecure: %v", r.err)
	}
	t.Setenv("REGENT_API_CACERT", c.caFile)
	if r = run.run(t, append(auth, "pause")...); r.err != nil {
		t.Errorf("$REGENT_API_CACERT: %v", r.err)
	}
	t.Setenv("REGENT_API_CACERT", "")
	cfgFile := writeRegentYAML(t, "  authentication: {username: admin, password: s3cret}\n  cafile: "+c.caFile+"\n")
	if r = run.run(t, "-c", cfgFile, "pause"); r.err != nil {
		t.Errorf("restapi.cafile and authentication from -c: %v", r.err)
	}
	if n := a.count(); n != 4 {
		t.Errorf("%d patches reached the agent, want 4", n)
	}
	if r = run.run(t, append(auth, "--cacert", filepath.Join(t.TempDir(), "none.pem"), "pause")...); r.code != exitFailed || !strings.Contains(r.err.Error(), "--cacert") {
		t.Errorf("missing --cacert file: exit %d, %v", r.code, r.err)
	}
}

func TestRESTClientCertificate(t *testing.T) {
	clearEnv(t)
	c := newCerts(t)
	a, url := tlsAgent(t, c, tls.RequireAndVerifyClientCert, "required")
	run := ctlRun{loader: fixed(threeMembers(map[string]string{"pg1": url}, `{}`))}
	args := []string{"--user", "admin", "--password", "s3cret", "--cacert", c.caFile}
	if r := run.run(t, append(args, "pause")...); r.code != exitFailed {
		t.Errorf("without a client certificate: exit %d, %v", r.code, r.err)
	}
	if r := run.run(t, append(args, "--cert", c.client.CertFile, "--key", c.client.KeyFile, "pause")...); r.err != nil {
		t.Errorf("--cert/--key: %v", r.err)
	}
	if r := run.run(t, append(args, "--cert", c.client.CertFile, "pause")...); r.code != exitFailed || !strings.Contains(r.err.Error(), "--cert given without --key") {
		t.Errorf("--cert alone: exit %d, %v", r.code, r.err)
	}
	if n := a.count(); n != 1 {
		t.Errorf("%d patches reached the agent, want 1", n)
	}
}
