package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/netns"
	"github.com/regent-ha/regent/internal/proc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the production deployment's events, generous for 2 busy cores.
const (
	prodEtcdTimeout    = 60 * time.Second // three TLS members form a quorum
	prodLeaderTimeout  = 60 * time.Second // initdb and the first lease
	prodReplTimeout    = 90 * time.Second // two pg_basebackups, streaming
	prodHAProxyTimeout = 30 * time.Second // the checks mark the non-matching servers down
	prodStepTimeout    = 2 * time.Minute  // one run or check block of the page
	prodStopTimeout    = 30 * time.Second // an agent's clean exit
)

// TestProductionDeployment follows docs/production.md: it makes the
// certificates and turns on etcd's authentication with the page's own
// commands, starts three etcd members from the page's etcd files (TLS for
// clients and peers, JWT tokens), three agents (as the postgres user) from
// the page's regent.yml files, and HAProxy from the page's haproxy.cfg, each
// host in its own network namespace on the page's ports, in the page's
// order, then runs the page's checks as written. Only addresses, system
// paths and the watchdog device differ (see sandbox). A wrong key in a
// file, a check that no longer holds or a command that no longer exists
// fails it.
func TestProductionDeployment(t *testing.T) {
	requireProductionEnvironment(t)
	doc := loadProductionDoc(t)
	if len(doc.runs) != 2 {
		t.Fatalf("%s: want two run blocks (certificates, then etcd authentication), got %d", productionDoc, len(doc.runs))
	}
	d := newProdDeployment(t, doc)

	d.step(doc.runs[0]) // the certificates
	d.distributeCerts()
	for _, m := range []string{"etcd1", "etcd2", "etcd3"} {
		d.startEtcd(m)
	}
	d.waitEtcd()
	d.step(doc.runs[1]) // etcd users, role, auth enable

	d.startAgent("pg1")
	d.waitRole("pg1", "primary", prodLeaderTimeout)
	d.startAgent("pg2")
	d.startAgent("pg3")
	d.waitRole("pg2", "replica", prodReplTimeout)
	d.waitRole("pg3", "replica", prodReplTimeout)

	d.startHAProxy()
	for _, c := range doc.checks {
		d.step(c)
	}
}

func requireProductionEnvironment(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("production deployment: real processes in network namespaces, skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("production deployment: needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "openssl", "etcdctl", "haproxy", "curl", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs iproute2, openssl, etcd-client, haproxy, curl, postgresql-15): %v", tool, err)
		}
	}
}

// prodDeployment is the page's deployment in the test's namespaces.
type prodDeployment struct {
	t     *testing.T
	doc   *prodDoc
	box   *sandbox
	net   *netns.Network
	hosts map[string]*netns.Host
	user  testcluster.OSUser
	bins  map[string]string // regent, regentctl, chaos-etcd
	env   []string          // the page's regent.env: the agents' environment
	admin []string          // env and the etcd root password: the page's commands' environment
	procs map[string]*proc.Handle
	ctx   context.Context
}

func newProdDeployment(t *testing.T, doc *prodDoc) *prodDeployment {
	t.Helper()
	d := &prodDeployment{t: t, doc: doc, hosts: map[string]*netns.Host{}, procs: map[string]*proc.Handle{},
		bins: map[string]string{}}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	d.ctx = ctx
	for _, pkg := range []string{"./cmd/regent", "./cmd/regentctl", "./internal/chaos/cmd/chaos-etcd"} {
		d.bins[filepath.Base(pkg)] = testcluster.Binary(t, pkg, "")
	}
	var err error
	if d.user, err = testcluster.LookupOSUser(); err != nil {
		t.Fatal(err)
	}
	if err := proc.BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go proc.ReapLoop(ctx, reaped)
	base, err := os.MkdirTemp("", "regent-production-") //nolint:usetesting // kept when the test fails: the logs are in it
	if err != nil {
		t.Fatal(err)
	}
	if err := testcluster.OpenPath(base); err != nil {
		t.Fatal(err)
	}
	if d.net, err = netns.New(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.teardown()
		d.net.Close(context.WithoutCancel(ctx))
		cancel()
		<-reaped
		if t.Failed() {
			t.Logf("production deployment: logs kept in %s", base)
			return
		}
		_ = os.RemoveAll(base)
	})
	d.box = &sandbox{base: base, addr: d.net.Addr, subnet: d.net.Subnet(), hosts: prodHosts}
	for octet, name := range prodHosts {
		h, err := d.net.AddHost(ctx, name, octet)
		if err != nil {
			t.Fatal(err)
		}
		d.hosts[name] = h
	}
	for _, dir := range []string{"admin", "logs"} {
		if err := os.MkdirAll(filepath.Join(base, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d.env = doc.env(t)
	d.admin = append(append([]string(nil), d.env...), "ETCD_ROOT_PASSWORD=test-etcd-root")
	return d
}

// step runs a run or check block of the page as written (rewritten for
// the sandbox) with bash, in the admin directory for the admin host and
// in the host's directory otherwise, with regentctl on PATH and the page's
// secrets in the environment. It must exit 0.
func (d *prodDeployment) step(b docBlock) {
	d.t.Helper()
	script, err := d.box.rewrite(b.host, b.body)
	if err != nil {
		d.t.Fatalf("%s: %v", b, err)
	}
	ctx, cancel := context.WithTimeout(d.ctx, prodStepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = d.box.hostDir(b.host)
	cmd.Env = append(os.Environ(), d.admin...)
	cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(d.bins["regentctl"])+":"+os.Getenv("PATH"))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d.t.Logf("%s (%s):\n%s", b, time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		d.t.Fatalf("%s failed: %v\nscript:\n%s", b, err, script)
	}
}

// install writes a file of the page (rewritten) to host's sandbox, owned
// by the agents' user when owned.
func (d *prodDeployment) install(host, path, body string, owned bool) {
	d.t.Helper()
	if body == "" {
		body = d.doc.file(d.t, host, path)
	}
	text, err := d.box.rewrite(host, body)
	if err != nil {
		d.t.Fatalf("%s:%s: %v", host, path, err)
	}
	d.write(host, path, []byte(text), owned)
}

func (d *prodDeployment) write(host, path string, data []byte, owned bool) {
	d.t.Helper()
	dst := d.box.path(host, path)
	if err := d.mkdir(host, filepath.Dir(path), owned); err != nil {
		d.t.Fatal(err)
	}
	var err error
	if owned {
		err = d.user.WriteOwned(dst, data)
	} else {
		err = os.WriteFile(dst, data, 0o600)
	}
	if err != nil {
		d.t.Fatalf("write %s: %v", dst, err)
	}
}

// mkdir creates host's system directory dir in the sandbox (its parents
// traversable, itself owned by the agents' user when owned).
func (d *prodDeployment) mkdir(host, dir string, owned bool) error {
	dst := d.box.path(host, dir)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if owned {
		return d.user.MkdirOwned(dst)
	}
	return os.MkdirAll(dst, 0o700)
}

// distributeCerts copies the admin host's certificates as the page's
// table says.
func (d *prodDeployment) distributeCerts() {
	d.t.Helper()
	admin := d.box.hostDir("admin")
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(admin, name))
		if err != nil {
			d.t.Fatalf("the page's certificate step made no %s: %v", name, err)
		}
		return string(data)
	}
	for _, m := range []string{"etcd1", "etcd2", "etcd3"} {
		for _, f := range []string{"ca.crt", m + ".crt", m + ".key", "jwt.key", "jwt.pub"} {
			d.write(m, "/etc/etcd/tls/"+f, []byte(read(f)), false)
		}
	}
	for _, h := range dbHosts {
		for _, f := range []string{"ca.crt", h + ".crt", h + ".key"} {
			d.write(h, "/etc/regent/tls/"+f, []byte(read(f)), true)
		}
	}
	d.write("haproxy", "/etc/haproxy/regent-ca.crt", []byte(read("ca.crt")), false)
}

// start starts a process in host's namespace as cred, output to the log.
func (d *prodDeployment) start(host string, h *proc.Handle, cmd *exec.Cmd, owned bool) {
	d.t.Helper()
	h.Launch = proc.Netns(d.hosts[host].Path)
	h.Log = filepath.Join(d.box.base, "logs", host+".log")
	d.procs[host] = h
	var cred = d.user.Credential()
	if !owned {
		cred = nil
	}
	if err := h.StartLogged(cmd, cred); err != nil {
		d.t.Fatal(err)
	}
}

// startEtcd starts member m from the page's etcd.conf.yml.
func (d *prodDeployment) startEtcd(m string) {
	d.t.Helper()
	const conf = "/etc/etcd/etcd.conf.yml"
	d.install(m, conf, "", false)
	if err := d.mkdir(m, "/var/lib/etcd", false); err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.CommandContext(d.ctx, d.bins["chaos-etcd"], "-config-file", d.box.path(m, conf))
	d.start(m, &proc.Handle{Name: "etcd member " + m}, cmd, false)
}

// waitEtcd waits until `etcdctl endpoint health` (with the admin host's
// certificate, before authentication is on) passes on every member.
func (d *prodDeployment) waitEtcd() {
	d.t.Helper()
	var eps []string
	for i := 21; i <= 23; i++ {
		eps = append(eps, fmt.Sprintf("https://%s:2379", d.net.Addr(i)))
	}
	admin := d.box.hostDir("admin")
	testcluster.Poll(d.t, prodEtcdTimeout, "etcd cluster healthy", func(ctx context.Context) error {
		d.failIfCrashed()
		cmd := exec.CommandContext(ctx, "etcdctl", "--endpoints", strings.Join(eps, ","),
			"--cacert", "ca.crt", "--cert", "etcd1.crt", "--key", "etcd1.key", "--dial-timeout", "2s", "endpoint", "health")
		cmd.Dir = admin
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}

// startAgent installs host's regent.yml and regent.env and starts its
// agent as the postgres user, as the systemd unit would.
func (d *prodDeployment) startAgent(host string) {
	d.t.Helper()
	d.install(host, "/etc/regent/regent.yml", "", true)
	d.install(host, "/etc/regent/regent.env", "", true)
	for _, dir := range []string{"/var/lib/postgresql/15/regent", "/var/run/postgresql"} {
		if err := d.mkdir(host, dir, true); err != nil {
			d.t.Fatal(err)
		}
	}
	// The page gives the postgres user the watchdog device: here, the
	// directory of its stand-in.
	wd := filepath.Dir(strings.TrimPrefix(d.box.watchdogDevice(host), "journal:"))
	if err := d.user.MkdirOwned(wd); err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.CommandContext(d.ctx, d.bins["regent"], "-c", d.box.path(host, "/etc/regent/regent.yml"))
	cmd.Env = append(os.Environ(), d.env...)
	h := &proc.Handle{Name: "agent of " + host, DataDir: d.box.path(host, "/var/lib/postgresql/15/regent")}
	d.start(host, h, cmd, true)
}

// waitRole waits until host's REST API answers /<role> with 200 over
// https, checked with curl and the page's CA.
func (d *prodDeployment) waitRole(host, role string, timeout time.Duration) {
	d.t.Helper()
	ca := d.box.path(host, "/etc/regent/tls/ca.crt")
	url := fmt.Sprintf("https://%s:8008/%s", d.hosts[host].IP, role)
	testcluster.Poll(d.t, timeout, host+" "+role, func(ctx context.Context) error {
		d.failIfCrashed()
		out, err := exec.CommandContext(ctx, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
			"--max-time", "2", "--cacert", ca, url).CombinedOutput()
		if err != nil {
			return fmt.Errorf("GET %s: %w: %s", url, err, out)
		}
		if string(out) != "200" {
			return fmt.Errorf("GET %s: %s", url, out)
		}
		return nil
	})
}

// startHAProxy checks and starts HAProxy with the page's haproxy.cfg and
// waits until its checks have marked the non-matching servers down: pg2
// and pg3 on the write port, pg1 on the read port.
func (d *prodDeployment) startHAProxy() {
	d.t.Helper()
	const conf = "/etc/haproxy/haproxy.cfg"
	d.install("haproxy", conf, "", false)
	if err := d.mkdir("haproxy", "/var/lib/haproxy", false); err != nil {
		d.t.Fatal(err)
	}
	cfg := d.box.path("haproxy", conf)
	if out, err := exec.CommandContext(d.ctx, "haproxy", "-c", "-f", cfg).CombinedOutput(); err != nil {
		d.t.Fatalf("haproxy -c -f %s: %v\n%s", cfg, err, out)
	}
	cmd := exec.CommandContext(d.ctx, "haproxy", "-db", "-f", cfg)
	d.start("haproxy", &proc.Handle{Name: "haproxy"}, cmd, false)
	log := filepath.Join(d.box.base, "logs", "haproxy.log")
	testcluster.Poll(d.t, prodHAProxyTimeout, "HAProxy marks pg2, pg3 down for writes and pg1 for reads", func(context.Context) error {
		d.failIfCrashed()
		data, err := os.ReadFile(log)
		if err != nil {
			return err
		}
		for _, s := range []string{"primary/pg2 is DOWN", "primary/pg3 is DOWN", "replicas/pg1 is DOWN"} {
			if !strings.Contains(string(data), s) {
				return fmt.Errorf("no %q in the log yet", s)
			}
		}
		return nil
	})
}

// failIfCrashed fails the test at once when a process exited on its own
// (an agent refusing its configuration exits 2): waiting on would only
// time out.
func (d *prodDeployment) failIfCrashed() {
	d.t.Helper()
	for host, h := range d.procs {
		if err := h.Crashed(); err != nil {
			d.t.Fatalf("%s: %v", host, err)
		}
	}
}

// teardown stops HAProxy and the agents, kills PostgreSQL and etcd, and
// prints each log's tail when the test failed.
func (d *prodDeployment) teardown() {
	if d.t.Failed() {
		for host, h := range d.procs {
			data, _ := os.ReadFile(h.Log)
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			d.t.Logf("--- %s (last lines of %s):\n%s", host, h.Log, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	}
	order := []string{"haproxy", "pg3", "pg2", "pg1", "etcd1", "etcd2", "etcd3"}
	for _, host := range order {
		h, ok := d.procs[host]
		if !ok {
			continue
		}
		if strings.HasPrefix(host, "pg") {
			if _, err := h.Stop(prodStopTimeout); err != nil {
				d.t.Errorf("stop %s: %v", h.Name, err)
			}
			if _, err := h.KillPostgres(); err != nil {
				d.t.Errorf("%v", err)
			}
			continue
		}
		if err := h.Kill(); err != nil {
			d.t.Errorf("%v", err)
		}
	}
}
