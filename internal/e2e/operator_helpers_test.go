package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/internal/testpki"
	"github.com/regent-ha/regent/postgres"
)

// regentctlBinary returns the path of a regentctl built from
// ./cmd/regentctl, once per test process (removed by TestMain).
func regentctlBinary(t *testing.T) string { return testcluster.Binary(t, "./cmd/regentctl", "") }

// ctlResult is one regentctl (or patronictl) run.
type ctlResult struct {
	args   []string
	stdout string
	stderr string
	code   int // -1: killed at the bound or not started
	took   time.Duration
}

func (r ctlResult) String() string {
	return fmt.Sprintf("%v: exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.args, r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runTool runs bin with args, bounded by bound (then killed: code -1).
func runTool(t *testing.T, bound time.Duration, bin string, args ...string) ctlResult {
	t.Helper()
	return runToolWith(t, bound, nil, bin, args...)
}

// runToolWith is runTool with setup, if set, editing the command (its
// environment, its OS user) before it starts.
func runToolWith(t *testing.T, bound time.Duration, setup func(*exec.Cmd), bin string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if setup != nil {
		setup(cmd)
	}
	cmd.Stdin = nil // not a terminal: commands that would prompt need --force
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	res := ctlResult{args: append([]string{filepath.Base(bin)}, args...), stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.code = -1
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		res.code = -1
		res.stderr += "\n(run: " + err.Error() + ")"
	}
	t.Logf("%s", res)
	return res
}

// regentctl runs regentctl against c's etcd and scope, with extra global
// flags (credentials, TLS) before the command.
func regentctl(t *testing.T, c *testcluster.Cluster, bound time.Duration, args ...string) ctlResult {
	t.Helper()
	base := []string{"--etcd", strings.Join(c.EtcdEndpoints(), ","), "--scope", c.Scope()}
	return runTool(t, bound, regentctlBinary(t), append(base, args...)...)
}

// waitListed polls `regentctl list -o json` until it parses into one row
// per node: leader as Leader, every other node as Replica, each running,
// with its host:port and a timeline.
func waitListed(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node) {
	t.Helper()
	type row struct {
		Name, Role, State string
		Host              string
		Timeline          int
	}
	testcluster.Poll(t, replicateTimeout, "regentctl list -o json: leader "+leader.Name+" and running replicas", func(context.Context) error {
		r := regentctl(t, c, ctlBound, "list", "-o", "json")
		var rows []row
		if r.code != 0 {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			return fmt.Errorf("parse %q: %w", r.stdout, err)
		}
		if len(rows) != len(c.Nodes()) {
			return fmt.Errorf("%d rows, want %d: %+v", len(rows), len(c.Nodes()), rows)
		}
		var errs []error
		for _, rw := range rows {
			n := c.Node(rw.Name)
			want := map[bool]string{true: "Leader", false: "Replica"}[n == leader]
			if n == nil || rw.Role != want || rw.State != "running" || rw.Host != fmt.Sprintf("127.0.0.1:%d", n.PGPort) || rw.Timeline < 1 {
				errs = append(errs, fmt.Errorf("row %+v: want %s, running, its host:port, a timeline", rw, want))
			}
		}
		return errors.Join(errs...)
	})
}

// mustSucceed fails the test unless r exited 0.
func mustSucceed(t *testing.T, r ctlResult) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: want exit status 0", r)
	}
}

// keyLeases returns, per key under the cluster prefix that is on a lease
// (members/<name>, leader), the lease ID and its granted TTL in seconds.
func keyLeases(ctx context.Context, c *testcluster.Cluster) (map[string][2]int64, error) {
	cli := c.Etcd()
	resp, err := cli.Get(ctx, c.Keys().Prefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd get %s: %w", c.Keys().Prefix(), err)
	}
	out := map[string][2]int64{}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), c.Keys().Prefix())
		if kv.Lease == 0 {
			continue
		}
		ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
		if err != nil {
			return nil, fmt.Errorf("lease %x of %s: %w", kv.Lease, name, err)
		}
		out[name] = [2]int64{kv.Lease, ttl.GrantedTTL}
	}
	return out, nil
}

// configRevision returns the config key's value and ModRevision.
func configRevision(t *testing.T, c *testcluster.Cluster) (map[string]any, int64) {
	t.Helper()
	resp := getKey(t, c, c.Keys().Config())
	if len(resp.Kvs) == 0 {
		t.Fatal("no config key")
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(resp.Kvs[0].Value))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("config key %q: %v", resp.Kvs[0].Value, err)
	}
	return cfg, resp.Kvs[0].ModRevision
}

// creds are HTTP Basic credentials; the zero value sends none.
type creds struct{ user, password string }

// restAPI calls the agents' REST API over http or https.
type restAPI struct {
	hc     *http.Client
	scheme string
}

func plainAPI() restAPI { return restAPI{hc: &http.Client{Timeout: 10 * time.Second}, scheme: "http"} }

// tlsAPI trusts only pool; the connection is closed after each request,
// as Patroni's server does.
func tlsAPI(pool *x509.CertPool) restAPI {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}
	return restAPI{hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}, scheme: "https"}
}

// from is a with its connections made from the local address src (in
// 127.0.0.0/8), a client of its own for the agents' per-address rules.
func (a restAPI) from(src string) restAPI {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if t, ok := a.hc.Transport.(*http.Transport); ok {
		tr = t.Clone()
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr.DialContext = d.DialContext
	return restAPI{hc: &http.Client{Timeout: a.hc.Timeout, Transport: tr}, scheme: a.scheme}
}

func (a restAPI) url(n *testcluster.Node, path string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d%s", a.scheme, n.APIPort, path)
}

// api is n's REST API through a.
func (a restAPI) api(n *testcluster.Node) testcluster.API {
	return testcluster.API{Name: n.Name, URL: a.url(n, ""), Client: a.hc}
}

// do sends one request; body nil sends none.
func (a restAPI) do(ctx context.Context, n *testcluster.Node, method, path string, body []byte, cr creds) (int, []byte, error) {
	var header []string
	if cr != (creds{}) {
		header = []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(cr.user+":"+cr.password))}
	}
	return a.api(n).Do(ctx, method, path, body, header...)
}

// status reads GET /patroni.
func (a restAPI) status(ctx context.Context, n *testcluster.Node) (map[string]any, error) {
	var st map[string]any
	_, err := getJSON(ctx, a.api(n), "/patroni", &st)
	return st, err
}

// testPKI is a throw-away CA and one server certificate for 127.0.0.1
// (also used as the agents' client certificate towards their peers).
type testPKI struct {
	CA, Cert, Key string // PEM files, owned by the agents' OS user
	Pool          *x509.CertPool
}

// newPKI writes the CA and server key pair into a directory the agents'
// user can read.
func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := testcluster.OpenTempDir(t)
	user, err := testcluster.LookupOSUser()
	if err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCAWith(t, dir, "ca", user.WriteOwned)
	server := ca.Issue(t, dir, "server")
	return testPKI{CA: ca.File, Cert: server.CertFile, Key: server.KeyFile, Pool: ca.Pool()}
}

// restapiSection returns the node's restapi map from an ExtraConfig map.
func restapiSection(cfg map[string]any) map[string]any {
	r, _ := cfg["restapi"].(map[string]any)
	return r
}

// callbackScript is a script in the node directory that appends one line
// per run to calls: its pid, then "$@" (action role scope). With hang, it
// then starts a background sleep, records it in calls+".sleep" (see
// readHangRuns) and waits for it: a callback that never returns.
func callbackScript(calls string, hang bool) string {
	s := "#!/bin/sh\n# Regent e2e callback\necho \"$$ $*\" >> '" + calls + "'\n"
	if hang {
		s += "sleep 86399 &\necho \"$! $$ $(date +%s%N)\" >> '" + calls + ".sleep'\nwait\n"
	}
	return s
}

// callbackCall is one recorded run of callbackScript.
type callbackCall struct {
	PID  int
	Args string // "on_role_change primary e2e"
}

// readCalls reads the runs recorded in path (none if it does not exist).
func readCalls(path string) ([]callbackCall, error) {
	var calls []callbackCall
	err := readRecords(path, func(line string) error {
		pid, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		p, err := strconv.Atoi(pid)
		if err != nil {
			return err
		}
		calls = append(calls, callbackCall{PID: p, Args: args})
		return nil
	})
	return calls, err
}

// hangRun is one run of the hanging callback: the script's and its
// sleep's pids, and when the script started.
type hangRun struct {
	sleep, script int
	started       time.Time
}

// readHangRuns reads the runs a hanging callbackScript recorded in path
// ("<sleep pid> <script pid> <start, ns since the epoch>" per line).
func readHangRuns(path string) ([]hangRun, error) {
	var runs []hangRun
	err := readRecords(path, func(line string) error {
		var r hangRun
		var ns int64
		if _, err := fmt.Sscan(line, &r.sleep, &r.script, &ns); err != nil {
			return err
		}
		r.started = time.Unix(0, ns)
		runs = append(runs, r)
		return nil
	})
	return runs, err
}

// readRecords calls parse on every line a callback script recorded in
// path; a file that does not exist holds none (the script has not run).
func readRecords(path string, parse func(line string) error) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for line := range strings.Lines(string(data)) {
		if err := parse(line); err != nil {
			return fmt.Errorf("%s: bad line %q: %w", path, line, err)
		}
	}
	return nil
}

// liveProcess reports whether pid is a live (non-zombie) process whose
// command line contains want: a recycled pid does not count.
func liveProcess(pid int, want string) bool {
	_, state, _, ok := postgres.ProcStat(pid)
	if !ok || state == 'Z' || state == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), want)
}

// pgText runs a query returning one text value on n.
func pgText(t *testing.T, n *testcluster.Node, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	v, err := queryString(ctx, n, sql)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// confLines returns the section headers (comments) of n's postgresql.conf
// and its lines that mention name.
func confLines(n *testcluster.Node, name string) string {
	data, err := os.ReadFile(filepath.Join(n.DataDir, "postgresql.conf"))
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "# ") || strings.Contains(line, name) {
			out = append(out, "  "+strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// memberField returns a member key's field, "" when absent.
func memberField(ctx context.Context, c *testcluster.Cluster, name, field string) (string, error) {
	m, err := c.Member(ctx, name)
	if err != nil {
		return "", err
	}
	return str(m[field]), nil
}

// The on_role_change callback of these tests: a script in each node
// directory recording its runs in roleChangeCalls.
const (
	roleChangeScript = "on_role_change.sh"
	roleChangeCalls  = "on_role_change.calls"
)

func roleChangeConfig(timeout string) func(string, map[string]any) {
	return func(_ string, cfg map[string]any) {
		cfg["callbacks"] = map[string]any{
			"on_role_change": []string{filepath.Join(nodeDirOf(cfg), roleChangeScript)},
			"timeout":        timeout,
		}
	}
}

// writeRoleChangeScripts installs the callback on every node.
func writeRoleChangeScripts(t *testing.T, c *testcluster.Cluster, hang bool) {
	t.Helper()
	for _, n := range c.Nodes() {
		n.WriteFile(t, roleChangeScript, []byte(callbackScript(filepath.Join(n.Dir, roleChangeCalls), hang)), 0o755)
	}
}

// waitCalls waits until n's callback recorded a run and checks that its
// runs are exactly want (the argument strings).
func waitCalls(t *testing.T, n *testcluster.Node, timeout time.Duration, want ...string) []callbackCall {
	t.Helper()
	path := filepath.Join(n.Dir, roleChangeCalls)
	var calls []callbackCall
	testcluster.Poll(t, timeout, fmt.Sprintf("%d on_role_change run(s) on %s", len(want), n.Name), func(context.Context) error {
		var err error
		if calls, err = readCalls(path); err != nil {
			return err
		}
		if len(calls) < len(want) {
			return fmt.Errorf("runs: %+v", calls)
		}
		return nil
	})
	var got []string
	for _, call := range calls {
		got = append(got, call.Args)
	}
	if !slices.Equal(got, want) {
		t.Errorf("on_role_change runs on %s: %q, want %q", n.Name, got, want)
	}
	return calls
}

// waitHangRun waits for the hanging callback on n to record its run.
func waitHangRun(t *testing.T, n *testcluster.Node) hangRun {
	t.Helper()
	var run hangRun
	path := filepath.Join(n.Dir, roleChangeCalls+".sleep")
	testcluster.Poll(t, configApplyWait, n.Name+"'s hanging callback started", func(context.Context) error {
		runs, err := readHangRuns(path)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return fmt.Errorf("%s: no run recorded", path)
		}
		run = runs[0]
		return nil
	})
	return run
}

// The REST API credentials of these tests.
const (
	apiUser     = "operator"
	apiPassword = "op-s3cret"
)

func restAuthConfig(_ string, cfg map[string]any) {
	restapiSection(cfg)["authentication"] = map[string]any{"username": apiUser, "password": apiPassword}
}

func bodyBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// waitConfReload waits until n's pg_conf_load_time() differs from before.
func waitConfReload(t *testing.T, n *testcluster.Node, before string) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, n.Name+" reloaded its configuration (pg_conf_load_time changed)", func(ctx context.Context) error {
		now, err := queryString(ctx, n, "SELECT pg_conf_load_time()::text")
		if err != nil {
			return err
		}
		if now == before {
			return fmt.Errorf("pg_conf_load_time still %s", now)
		}
		return nil
	})
}

// waitReplicasVia waits until every node but leader runs as a replica
// (GET /patroni through api).
func waitReplicasVia(t *testing.T, c *testcluster.Cluster, api restAPI, leader *testcluster.Node) {
	t.Helper()
	for _, n := range c.Others(leader.Name) {
		testcluster.Poll(t, bootstrapTimeout, n.Name+" running as a replica (GET /patroni over "+api.scheme+")", func(ctx context.Context) error {
			st, err := api.status(ctx, n)
			if err != nil {
				return err
			}
			if st["role"] != "replica" || st["state"] != "running" {
				return fmt.Errorf("role=%v state=%v", st["role"], st["state"])
			}
			return nil
		})
	}
}

// waitSetting waits until SHOW name is want on every node.
func waitSetting(t *testing.T, nodes []*testcluster.Node, name, want string, timeout time.Duration) {
	t.Helper()
	testcluster.Poll(t, timeout, fmt.Sprintf("SHOW %s = %s on every node", name, want), settingOn(nodes, name, want))
}

// settingOn checks that SHOW name is want on every node.
func settingOn(nodes []*testcluster.Node, name, want string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		for _, n := range nodes {
			got, err := queryString(ctx, n, "SHOW "+name)
			if err == nil && got != want {
				err = fmt.Errorf("%s: %s = %s", n.Name, name, got)
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
}

// waitPendingRestart waits until every member's key and GET /patroni show
// pending_restart (want) or omit it (!want).
func waitPendingRestart(t *testing.T, c *testcluster.Cluster, nodes []*testcluster.Node, want bool, timeout time.Duration) {
	t.Helper()
	testcluster.Poll(t, timeout, fmt.Sprintf("pending_restart=%t in every member key and GET /patroni", want), pendingRestartOn(c, nodes, want))
}

// pendingRestartOn checks that the member key and GET /patroni of every
// node show pending_restart (want) or omit it (!want).
func pendingRestartOn(c *testcluster.Cluster, nodes []*testcluster.Node, want bool) func(ctx context.Context) error {
	wantStr := map[bool]string{true: "true", false: ""}[want]
	return func(ctx context.Context) error { return fieldOn(ctx, c, nodes, "pending_restart", wantStr) }
}

// fieldOn checks that the member key and GET /patroni of every node show
// field as want ("": omit it).
func fieldOn(ctx context.Context, c *testcluster.Cluster, nodes []*testcluster.Node, field, want string) error {
	var errs []error
	for _, n := range nodes {
		m, err := memberField(ctx, c, n.Name, field)
		if err != nil {
			return err
		}
		st, err := n.Status(ctx)
		if err != nil {
			return err
		}
		if m != want || str(st[field]) != want {
			errs = append(errs, fmt.Errorf("%s: member key %s %q, GET /patroni %s %q", n.Name, field, m, field, str(st[field])))
		}
	}
	return errors.Join(errs...)
}

// silentListener accepts connections and never writes to them, until the
// test ends.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
