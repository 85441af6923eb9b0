package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// productionDoc is the page TestProductionDeployment follows.
const productionDoc = "../../docs/production.md"

// docBlock is one fenced code block of the page whose info string carries
// a marker (see docs/production.md, "How this page is read by the test"):
// file=HOST:PATH, run=HOST or check=HOST.
type docBlock struct {
	kind string // "file", "run" or "check"
	host string // "pg1", "etcd2", "haproxy", "admin", "all-db"
	path string // for a file
	body string
	line int // of the opening fence, for messages
}

func (b docBlock) String() string {
	if b.kind == "file" {
		return fmt.Sprintf("docs/production.md:%d (%s:%s)", b.line, b.host, b.path)
	}
	return fmt.Sprintf("docs/production.md:%d (%s on %s)", b.line, b.kind, b.host)
}

// prodDoc is what the page gives: the files by host and path, the setup
// steps and the checks in page order.
type prodDoc struct {
	files  map[string]map[string]string // host → path → content
	runs   []docBlock
	checks []docBlock
}

// dbHosts are the database hosts; "all-db" files go to each.
var dbHosts = []string{"pg1", "pg2", "pg3"}

// loadProductionDoc reads and splits the page.
func loadProductionDoc(t *testing.T) *prodDoc {
	t.Helper()
	data, err := os.ReadFile(productionDoc)
	if err != nil {
		t.Fatalf("read %s: %v", productionDoc, err)
	}
	blocks, err := parseDocBlocks(string(data))
	if err != nil {
		t.Fatalf("%s: %v", productionDoc, err)
	}
	d := &prodDoc{files: map[string]map[string]string{}}
	for _, b := range blocks {
		switch b.kind {
		case "run":
			d.runs = append(d.runs, b)
		case "check":
			d.checks = append(d.checks, b)
		case "file":
			hosts := []string{b.host}
			if b.host == "all-db" {
				hosts = dbHosts
			}
			for _, h := range hosts {
				if d.files[h] == nil {
					d.files[h] = map[string]string{}
				}
				if _, dup := d.files[h][b.path]; dup {
					t.Fatalf("%s: %s:%s given twice", b, h, b.path)
				}
				d.files[h][b.path] = b.body
			}
		}
	}
	return d
}

// file returns the content the page gives for path on host.
func (d *prodDoc) file(t *testing.T, host, path string) string {
	t.Helper()
	body, ok := d.files[host][path]
	if !ok {
		t.Fatalf("%s gives no file=%s:%s block", productionDoc, host, path)
	}
	return body
}

// env parses the all-db regent.env (KEY=VALUE lines) into KEY=VALUE
// strings for a process environment.
func (d *prodDoc) env(t *testing.T) []string {
	t.Helper()
	var env []string
	for line := range strings.Lines(d.file(t, "pg1", "/etc/regent/regent.env")) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			t.Fatalf("regent.env: %q is not KEY=VALUE", line)
		}
		env = append(env, line)
	}
	return env
}

var fenceMarker = regexp.MustCompile(`^(file|run|check)=(\S+)$`)

// parseDocBlocks returns the marked fenced blocks of a Markdown page.
// Unmarked blocks are skipped; an unclosed fence or a malformed marker is
// an error.
func parseDocBlocks(md string) ([]docBlock, error) {
	var out []docBlock
	sc := bufio.NewScanner(strings.NewReader(md))
	lineNo := 0
	var cur *docBlock
	var body strings.Builder
	inFence := false
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if !inFence {
			info, ok := strings.CutPrefix(line, "```")
			if !ok {
				continue
			}
			inFence, cur = true, nil
			body.Reset()
			for _, f := range strings.Fields(info)[min(1, len(strings.Fields(info))):] {
				m := fenceMarker.FindStringSubmatch(f)
				if m == nil {
					return nil, fmt.Errorf("line %d: %q is not file=HOST:PATH, run=HOST or check=HOST", lineNo, f)
				}
				b := docBlock{kind: m[1], host: m[2], line: lineNo}
				if b.kind == "file" {
					host, path, ok := strings.Cut(m[2], ":")
					if !ok || !filepath.IsAbs(path) {
						return nil, fmt.Errorf("line %d: %q is not file=HOST:/absolute/path", lineNo, f)
					}
					b.host, b.path = host, path
				}
				cur = &b
			}
			continue
		}
		if line == "```" {
			inFence = false
			if cur != nil {
				cur.body = body.String()
				out = append(out, *cur)
			}
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if inFence {
		return nil, fmt.Errorf("a fence opened is never closed (%d lines)", lineNo)
	}
	return out, sc.Err()
}

// sandbox maps the page's hosts onto the test's: the address 10.0.0.N
// becomes octet N of the test network, and each host's system paths move
// under its own directory.
type sandbox struct {
	base   string           // the hosts' directories are base/<host>
	addr   func(int) string // the test network's address .N
	subnet string           // the test network, for 10.0.0.0/24
	hosts  map[int]string   // octet → host name, the only addresses the page may use
}

// hostPaths are the system paths a host's files and commands use; each
// moves to base/<host><path>.
var hostPaths = regexp.MustCompile(`(/etc/regent|/etc/etcd|/etc/haproxy|/var/lib/postgresql|/var/lib/etcd|/var/lib/haproxy|/var/run/postgresql)\b`)

var (
	docAddr   = regexp.MustCompile(`\b10\.0\.0\.(\d{1,3})\b`)
	docSubnet = regexp.MustCompile(`\b10\.0\.0\.0/24\b`)
)

// hostDir is host's directory: its system paths live below it.
func (s *sandbox) hostDir(host string) string { return filepath.Join(s.base, host) }

// path is where host's system path p is in the sandbox.
func (s *sandbox) path(host, p string) string {
	return hostPaths.ReplaceAllString(p, s.hostDir(host)+"$1")
}

// watchdogDevice is the file-backed device that stands in for host's
// /dev/watchdog (fencing's journal device: it never touches a real one).
func (s *sandbox) watchdogDevice(host string) string {
	return "journal:" + filepath.Join(s.hostDir(host), "dev", "watchdog")
}

// rewrite applies the sandbox to text as seen from host: addresses,
// subnet, paths and the watchdog device. An address of the page that no
// host has is an error, so a typo in an address cannot pass unnoticed.
func (s *sandbox) rewrite(host, text string) (string, error) {
	var bad []string
	text = docSubnet.ReplaceAllString(text, s.subnet)
	text = docAddr.ReplaceAllStringFunc(text, func(a string) string {
		n, _ := strconv.Atoi(docAddr.FindStringSubmatch(a)[1])
		if _, ok := s.hosts[n]; !ok {
			bad = append(bad, a)
			return a
		}
		return s.addr(n)
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("addresses %v belong to no host of the page", bad)
	}
	text = strings.ReplaceAll(text, "/dev/watchdog", s.watchdogDevice(host))
	return s.path(host, text), nil
}

// TestProductionDocBlocks checks, without starting anything, that the page
// gives every file the deployment needs and that the test's rewriting
// covers every address in it.
func TestProductionDocBlocks(t *testing.T) {
	d := loadProductionDoc(t)
	want := map[string][]string{
		"etcd1": {"/etc/etcd/etcd.conf.yml"}, "etcd2": {"/etc/etcd/etcd.conf.yml"}, "etcd3": {"/etc/etcd/etcd.conf.yml"},
		"pg1": {"/etc/regent/regent.yml", "/etc/regent/regent.env"}, "pg2": {"/etc/regent/regent.yml", "/etc/regent/regent.env"},
		"pg3":     {"/etc/regent/regent.yml", "/etc/regent/regent.env"},
		"haproxy": {"/etc/haproxy/haproxy.cfg"},
	}
	for host, paths := range want {
		for _, p := range paths {
			d.file(t, host, p)
		}
	}
	if len(d.runs) != 2 || d.runs[0].host != "admin" || d.runs[1].host != "admin" {
		t.Fatalf("want two run=admin blocks (certificates, then etcd authentication), got %v", d.runs)
	}
	if len(d.checks) == 0 {
		t.Fatal("no check blocks")
	}
	s := &sandbox{base: "/sandbox", addr: func(n int) string { return fmt.Sprintf("10.201.9.%d", n) },
		subnet: "10.201.9.0/24", hosts: prodHosts}
	for host, files := range d.files {
		for p, body := range files {
			got, err := s.rewrite(host, body)
			if err != nil {
				t.Errorf("%s:%s: %v", host, p, err)
			}
			if strings.Contains(got, "10.0.0.") {
				t.Errorf("%s:%s: an address of the page is left after rewriting:\n%s", host, p, got)
			}
		}
	}
	got, err := s.rewrite("pg2", "data_dir: /var/lib/postgresql/15/regent\nbin_dir: /usr/lib/postgresql/15/bin\n"+
		"device: /dev/watchdog\nhba: 10.0.0.0/24 api: 10.0.0.12:8008")
	if err != nil {
		t.Fatal(err)
	}
	wantText := "data_dir: /sandbox/pg2/var/lib/postgresql/15/regent\nbin_dir: /usr/lib/postgresql/15/bin\n" +
		"device: journal:/sandbox/pg2/dev/watchdog\nhba: 10.201.9.0/24 api: 10.201.9.12:8008"
	if got != wantText {
		t.Errorf("rewrite:\n got %q\nwant %q", got, wantText)
	}
	if _, err := s.rewrite("pg1", "10.0.0.99"); err == nil {
		t.Error("rewrite accepted an address of no host")
	}
}

// prodHosts are the page's hosts by the last octet of their address.
var prodHosts = map[int]string{11: "pg1", 12: "pg2", 13: "pg3", 21: "etcd1", 22: "etcd2", 23: "etcd3", 31: "haproxy"}
