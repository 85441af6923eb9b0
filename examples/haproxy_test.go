package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// haproxyVar is a "${NAME}" reference, which HAProxy expands from its
// environment inside double quotes.
var haproxyVar = regexp.MustCompile(`"\$\{([A-Z0-9_]+)\}"`)

// TestHAProxyConfigValid: `haproxy -c` accepts examples/haproxy/haproxy.cfg
// with its environment set, without a warning, and the file keeps the
// check settings the routing depends on. The routing itself is tested
// end to end in internal/e2e (TestHAProxyRoutesAndMetrics).
func TestHAProxyConfigValid(t *testing.T) {
	data := readExample(t, "haproxy/haproxy.cfg")
	for _, want := range []string{
		"option httpchk OPTIONS /primary",
		"option httpchk GET /replica?lag=10MB",
		"http-check expect status 200",
		"default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
		"mode tcp",
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is not installed (apt-get install haproxy; .ci/run installs it): %v", err)
	}
	// haproxy -c binds nothing: any valid port will do.
	env := os.Environ()
	for i, m := range haproxyVar.FindAllSubmatch(data, -1) {
		name := string(m[1])
		switch {
		case strings.HasSuffix(name, "_BIND"):
			env = append(env, fmt.Sprintf("%s=127.0.0.1:%d", name, 5000+i))
		case strings.HasSuffix(name, "_ADDR"):
			env = append(env, name+"=127.0.0.1:5432")
		case strings.HasSuffix(name, "_PORT"):
			env = append(env, name+"=8008")
		default:
			t.Fatalf("haproxy.cfg references ${%s}: the test does not know what to set it to", name)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), verifyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, haproxy, "-c", "-f", "haproxy/haproxy.cfg")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("[WARNING]")) || bytes.Contains(out, []byte("[ALERT]")) {
		t.Errorf("haproxy -c warns:\n%s", out)
	}
}
