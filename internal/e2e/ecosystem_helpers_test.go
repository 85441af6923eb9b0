package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/regent-ha/regent/internal/freeport"
	"github.com/regent-ha/regent/internal/routerproc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// haproxyConfig is the example configuration, relative to this package.
const haproxyConfig = "../../examples/haproxy/haproxy.cfg"

// haproxyProc is a running HAProxy subprocess and its two listening addresses.
type haproxyProc struct {
	*daemon
	write, read string // host:port of the write and read pools
}

// haproxyBinary finds Debian's haproxy; the test cannot run without it.
func haproxyBinary(t *testing.T) string {
	t.Helper()
	bin, err := routerproc.Find("haproxy")
	if err != nil {
		t.Fatalf("%v (.ci/run installs it)", err)
	}
	return bin
}

// startHAProxy runs `haproxy -f examples/haproxy/haproxy.cfg -db` with the
// file's ${…} addresses pointing at c's nodes and two free local ports,
// after `haproxy -c` accepted it. HAProxy's output goes to t.Logf; it is
// stopped (SIGTERM) when the test ends, before the cluster. extra are
// more configuration files HAProxy reads after the example (a global
// section adding an admin socket).
func startHAProxy(t *testing.T, bin string, c *testcluster.Cluster, extra ...string) *haproxyProc {
	t.Helper()
	cfg, err := filepath.Abs(haproxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	p := &haproxyProc{write: freeAddr(t), read: freeAddr(t)}
	env := haproxyEnv(t, cfg, p, c)
	checkCtx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := []string{"-f", cfg}
	for _, f := range extra {
		args = append(args, "-f", f)
	}
	check := exec.CommandContext(checkCtx, bin, append([]string{"-c"}, args...)...)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c -f %s: %v\n%s", cfg, err, out)
	}
	cmd := exec.CommandContext(t.Context(), bin, append(args, "-db")...)
	cmd.Env = env
	p.daemon = startDaemon(t, "haproxy", cmd, syscall.SIGTERM)
	t.Logf("haproxy (pid %d): writes on %s, reads on %s", cmd.Process.Pid, p.write, p.read)
	return p
}

var haproxyVar = regexp.MustCompile(`"\$\{([A-Z0-9_]+)\}"`)

// haproxyEnv sets the variables the example reads: the two bind addresses,
// and per node PG<i>_ADDR (PostgreSQL) and PG<i>_API_PORT (Regent's REST).
func haproxyEnv(t *testing.T, cfg string, p *haproxyProc, c *testcluster.Cluster) []string {
	t.Helper()
	vars := map[string]string{"REGENT_WRITE_BIND": p.write, "REGENT_READ_BIND": p.read}
	for _, n := range c.Nodes() {
		name := strings.ToUpper(n.Name)
		vars[name+"_ADDR"] = fmt.Sprintf("127.0.0.1:%d", n.PGPort)
		vars[name+"_API_PORT"] = strconv.Itoa(n.APIPort)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range haproxyVar.FindAllSubmatch(data, -1) {
		if _, ok := vars[string(m[1])]; !ok {
			t.Fatalf("%s reads ${%s}, which this test does not set", cfg, m[1])
		}
	}
	env := os.Environ()
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// freeAddr returns a local address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// pgHit is where one connection through HAProxy landed.
type pgHit struct {
	inRecovery bool
	port       int
}

// connectVia opens a connection through addr and asks the server who it is.
func connectVia(ctx context.Context, addr string) (pgHit, error) {
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=postgres sslmode=disable connect_timeout=2",
		host, port, testcluster.SuperuserName, testcluster.SuperuserPassword))
	if err != nil {
		return pgHit{}, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return pgHit{}, fmt.Errorf("connect through %s: %w", addr, err)
	}
	defer closeQuietly(ctx, conn)
	var h pgHit
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery(), inet_server_port()").Scan(&h.inRecovery, &h.port); err != nil {
		return pgHit{}, fmt.Errorf("query through %s: %w", addr, err)
	}
	return h, nil
}

// waitWrites waits until consecutiveHits new connections in a row through
// the write port reach want's PostgreSQL, out of recovery, and logs how
// long that took.
func (p *haproxyProc) waitWrites(t *testing.T, want *testcluster.Node, when string, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	what := fmt.Sprintf("%d connections in a row through HAProxy's write port reaching the primary %s (port %d) %s",
		consecutiveHits, want.Name, want.PGPort, when)
	testcluster.Poll(t, timeout, what, func(ctx context.Context) error {
		p.alive(t)
		for i := range consecutiveHits {
			h, err := connectVia(ctx, p.write)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i+1, err)
			}
			if h.inRecovery || h.port != want.PGPort {
				return fmt.Errorf("connection %d reached port %d (pg_is_in_recovery %v)", i+1, h.port, h.inRecovery)
			}
		}
		return nil
	})
	t.Logf("HAProxy's write port reaches %s %s (settled in %.1fs)", want.Name, when, time.Since(start).Seconds())
}

// checkReads waits until the read port settles on the replicas, then opens
// readSamples connections through it: none may reach the primary or a
// server out of recovery, and every replica must serve some.
func (p *haproxyProc) checkReads(t *testing.T, primary *testcluster.Node, replicas []*testcluster.Node) {
	t.Helper()
	ports := map[int]string{}
	for _, r := range replicas {
		ports[r.PGPort] = r.Name
	}
	bad := func(h pgHit) error {
		if !h.inRecovery || h.port == primary.PGPort || ports[h.port] == "" {
			return fmt.Errorf("reached port %d (pg_is_in_recovery %v); the primary %s is on %d, the replicas on %v",
				h.port, h.inRecovery, primary.Name, primary.PGPort, ports)
		}
		return nil
	}
	testcluster.Poll(t, routeWait, "HAProxy's read port settling on the replicas", func(ctx context.Context) error {
		p.alive(t)
		for range consecutiveHits {
			h, err := connectVia(ctx, p.read)
			if err != nil {
				return err
			}
			if err := bad(h); err != nil {
				return err
			}
		}
		return nil
	})
	served := map[string]int{}
	for i := range readSamples {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		h, err := connectVia(ctx, p.read)
		cancel()
		if err != nil {
			t.Fatalf("read sample %d: %v", i+1, err)
		}
		if err := bad(h); err != nil {
			t.Fatalf("read sample %d: %v", i+1, err)
		}
		served[ports[h.port]]++
	}
	for _, r := range replicas {
		if served[r.Name] == 0 {
			t.Errorf("the read port never reached the replica %s in %d connections: %v", r.Name, readSamples, served)
		}
	}
	t.Logf("HAProxy's read port: %d connections, all to replicas: %v", readSamples, served)
}

// daemonStopTimeout bounds a daemon's exit after its stop signal (then
// SIGKILL) and after the test's context ends (SIGTERM).
const daemonStopTimeout = 5 * time.Second

// daemon is a subprocess (HAProxy, PgBouncer) that runs until the test
// ends.
type daemon struct {
	name string
	done chan struct{}
	err  error // exit status; valid after done
}

// startDaemon starts cmd, made with exec.CommandContext(t.Context(), …),
// with its output in t.Logf prefixed [name]. When the test ends it sends
// stop (t.Context() may not be cancelled yet) and waits, killing the
// process after 2*daemonStopTimeout.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd, stop os.Signal) *daemon {
	t.Helper()
	d := &daemon{name: name, done: make(chan struct{})}
	out := &logLines{t: t, prefix: "[" + name + "]"}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = daemonStopTimeout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(stop)
		select {
		case <-d.done:
		case <-time.After(2 * daemonStopTimeout):
			_ = cmd.Process.Kill()
			<-d.done
		}
		out.flush()
	})
	return d
}

// alive fails the test when the daemon is gone: nothing can route then.
func (d *daemon) alive(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		t.Fatalf("%s exited: %v (see its output above)", d.name, d.err)
	default:
	}
}

// logLines sends a subprocess's output to t.Logf, one line at a time.
// exec.Cmd calls Write from one goroutine at a time when Stdout and
// Stderr are the same writer; the mutex covers flush at cleanup.
type logLines struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *logLines) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			break
		}
		w.t.Logf("%s %s", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func (w *logLines) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.t.Logf("%s %s", w.prefix, w.buf)
		w.buf = nil
	}
}

// metricFamilies is one parsed /metrics scrape, by family name.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics reads n's GET /metrics and parses it as Prometheus does.
func scrapeMetrics(ctx context.Context, n *testcluster.Node) (metricFamilies, error) {
	code, body, err := n.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics on %s = %d", n.Name, code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("GET /metrics on %s does not parse: %w", n.Name, err)
	}
	return mfs, nil
}

// scrapeAll scrapes every node, failing the test on any error.
func scrapeAll(t *testing.T, nodes []*testcluster.Node) map[string]metricFamilies {
	t.Helper()
	out := map[string]metricFamilies{}
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		mfs, err := scrapeMetrics(ctx, n)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out[n.Name] = mfs
	}
	return out
}

// find returns the sample of family name whose labels include want.
func (f metricFamilies) find(name string, want map[string]string) (*dto.Metric, error) {
	mf, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("%s missing", name)
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%s%s missing", name, labelSelector(want))
}

// value is a gauge's, counter's or untyped sample's value.
func (f metricFamilies) value(name string, labels map[string]string) (float64, error) {
	m, err := f.find(name, labels)
	if err != nil {
		return 0, err
	}
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), nil
	case m.Counter != nil:
		return m.GetCounter().GetValue(), nil
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), nil
	}
	return 0, fmt.Errorf("%s%s is not a gauge or counter", name, labelSelector(labels))
}

// count is a histogram sample's observation count.
func (f metricFamilies) count(name string, labels map[string]string) (uint64, error) {
	m, err := f.find(name, labels)
	if err != nil {
		return 0, err
	}
	if m.Histogram == nil {
		return 0, fmt.Errorf("%s%s is not a histogram", name, labelSelector(labels))
	}
	return m.GetHistogram().GetSampleCount(), nil
}

// gaugeValue is value, failing the test when the sample is missing.
func gaugeValue(t *testing.T, f metricFamilies, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := f.value(name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// metricExpect collects metric mismatches for one node.
type metricExpect struct {
	node string
	f    metricFamilies
	errs []error
}

// expect records a mismatch unless the sample name{labels} exists and ok
// accepts its value; want says what ok wants, for the message.
func (e *metricExpect) expect(name string, labels map[string]string, want string, ok func(v float64) bool) {
	v, err := e.f.value(name, labels)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", e.node, err))
		return
	}
	if !ok(v) {
		e.errs = append(e.errs, fmt.Errorf("%s: %s%s = %v, want %s", e.node, name, labelSelector(labels), v, want))
	}
}

func (e *metricExpect) equal(name string, labels map[string]string, want float64) {
	e.expect(name, labels, fmt.Sprint(want), func(v float64) bool { return v == want })
}

func (e *metricExpect) atLeast(name string, labels map[string]string, want float64) {
	e.expect(name, labels, fmt.Sprintf("≥ %v", want), func(v float64) bool { return v >= want })
}

func (e *metricExpect) observed(name string, labels map[string]string) {
	n, err := e.f.count(name, labels)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", e.node, err))
		return
	}
	if n < 1 {
		e.errs = append(e.errs, fmt.Errorf("%s: %s_count%s = %d, want ≥ 1", e.node, name, labelSelector(labels), n))
	}
}

// labelSelector renders labels as PromQL does: {k="v",…}, nothing when empty.
func labelSelector(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, 0, len(labels))
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// switchoverMetrics names the two sides of a completed switchover and the
// old leader's timeline before it.
type switchoverMetrics struct {
	newLeader, oldLeader *testcluster.Node
	timelineBefore       float64
}

// checkSwitchoverMetrics waits (the agents update their series once per
// tick) until both sides' /metrics show the switchover: roles swapped,
// both on the next timeline, and on the new leader — the member that
// closed the record — one completed switchover with every stage's
// duration and its write-unavailability observed.
func checkSwitchoverMetrics(t *testing.T, s switchoverMetrics) {
	t.Helper()
	tl := s.timelineBefore + 1
	testcluster.Poll(t, replicateTimeout, "/metrics reflecting the switchover", func(ctx context.Context) error {
		var errs []error
		for _, n := range []*testcluster.Node{s.newLeader, s.oldLeader} {
			f, err := scrapeMetrics(ctx, n)
			if err != nil {
				return err
			}
			e := &metricExpect{node: n.Name, f: f}
			leads := 0.0
			if n == s.newLeader {
				leads = 1
			}
			e.equal("regent_role", map[string]string{"role": "primary"}, leads)
			e.equal("regent_role", map[string]string{"role": "replica"}, 1-leads)
			e.equal("patroni_primary", nil, leads)
			e.equal("patroni_replica", nil, 1-leads)
			e.equal("regent_timeline", nil, tl)
			e.equal("patroni_postgres_timeline", nil, tl)
			if n == s.newLeader {
				e.atLeast("regent_lease_remaining_seconds", nil, 0.001)
				e.atLeast("regent_switchovers_total", map[string]string{"result": "completed"}, 1)
				for _, stage := range switchoverStages {
					e.observed("regent_switchover_stage_duration_seconds", map[string]string{"stage": stage})
				}
				e.observed("regent_write_unavailability_seconds", map[string]string{"event": "switchover"})
				bound := unavailabilityBound.Seconds()
				e.expect("regent_last_write_unavailability_seconds", map[string]string{"event": "switchover"}, fmt.Sprintf("in (0, %v]", bound), func(v float64) bool { return v > 0 && v <= bound })
			} else {
				e.equal("regent_lease_remaining_seconds", nil, 0)
			}
			errs = append(errs, e.errs...)
		}
		return errors.Join(errs...)
	})
}

// checkFailoverMetrics: the member that won the failover counted it, and
// measured its write unavailability.
func checkFailoverMetrics(t *testing.T, winner *testcluster.Node) {
	t.Helper()
	f := scrapeAll(t, []*testcluster.Node{winner})[winner.Name]
	e := &metricExpect{node: winner.Name, f: f}
	e.atLeast("regent_failovers_total", map[string]string{"result": "promoted"}, 1)
	e.observed("regent_write_unavailability_seconds", map[string]string{"event": "failover"})
	for _, err := range e.errs {
		t.Error(err)
	}
}
