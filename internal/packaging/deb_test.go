package packaging_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// root is the repository root, from this package's directory.
const root = "../.."

// buildTimeout bounds `make deb` (two static binaries and nfpm; the first
// run on a machine also installs nfpm) and cmdTimeout one dpkg or binary run.
const (
	buildTimeout = 10 * time.Minute
	cmdTimeout   = time.Minute
)

// installed is what the package puts on the host, besides the conffile.
var installed = []string{
	"/usr/bin/regent",
	"/usr/bin/regentctl",
	"/lib/systemd/system/regent.service",
	"/usr/share/doc/regent/README.md",
	"/usr/share/doc/regent/operations.md",
	"/usr/share/doc/regent/examples/haproxy.cfg",
}

const conffile = "/etc/regent/regent.yml.example"

// envRef matches ${VAR} as config.Parse expands it.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestDebInstallsAndRemoves builds the package, installs it with dpkg -i,
// checks the files, the unit (systemd-analyze verify), the example config
// (regent validate) and `regent version` against the package version, then
// removes it with dpkg -r: only the conffile may stay. The package is
// purged on every way out, so a failed run leaves the host as it was.
func TestDebInstallsAndRemoves(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root; the test runs as root in CI (.ci/run)")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: this test installs the Debian package with it: %v", tool, err)
		}
	}
	if out, err := run(t, "dpkg-query", "-W", "-f=${Status}", "regent"); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("a regent package is already installed on this host (%s): this test would replace and purge it; remove it first", out)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "make", "-C", root, "deb", "ARCHS="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	t.Logf("make deb: %s", time.Since(start).Round(time.Second))
	deb := newestDeb(t, start)

	t.Cleanup(func() {
		// Purge on every way out (also after dpkg -r: the conffile).
		if out, err := run(t, "dpkg", "-P", "regent"); err != nil {
			t.Errorf("cleanup: dpkg -P regent: %v\n%s", err, out)
		}
	})
	if out, err := run(t, "dpkg", "-i", deb); err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", deb, err, out)
	}
	for _, f := range append(installed, conffile) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after dpkg -i: %v", err)
		}
	}
	checkVersion(t)
	checkUnit(t)
	checkExampleConfig(t)

	if out, err := run(t, "dpkg", "-r", "regent"); err != nil {
		t.Fatalf("dpkg -r regent: %v\n%s", err, out)
	}
	for _, f := range installed {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg -r: %s is still there (%v)", f, err)
		}
	}
	if _, err := os.Stat(conffile); err != nil {
		t.Errorf("after dpkg -r: the conffile should stay until purge: %v", err)
	}
	out, err := run(t, "dpkg-query", "-W", "-f=${Status}", "regent")
	if err != nil || string(out) != "deinstall ok config-files" {
		t.Errorf("after dpkg -r: dpkg-query status %q (%v), want %q", out, err, "deinstall ok config-files")
	}
	// What purge removes, checked here rather than trusted to the cleanup.
	if out, err := run(t, "dpkg", "-P", "regent"); err != nil {
		t.Fatalf("dpkg -P regent: %v\n%s", err, out)
	}
	if _, err := os.Stat(conffile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after dpkg -P: %s is still there (%v)", conffile, err)
	}
}

// newestDeb is the package `make deb` just wrote for this architecture
// (dist/ may hold older versions' packages).
func newestDeb(t *testing.T, since time.Time) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(root, "dist", "regent_*_"+runtime.GOARCH+".deb"))
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	var newestTime time.Time
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().After(newestTime) {
			newest, newestTime = m, fi.ModTime()
		}
	}
	if newest == "" || newestTime.Before(since.Add(-time.Second)) {
		t.Fatalf("make deb wrote no dist/regent_*_%s.deb (found %v)", runtime.GOARCH, matches)
	}
	return newest
}

// checkVersion: the installed binaries report the package's version (dpkg
// writes a semver pre-release "-dev" as "~dev") and a real commit and date.
func checkVersion(t *testing.T) {
	t.Helper()
	pkgVersion, err := run(t, "dpkg-query", "-W", "-f=${Version}", "regent")
	if err != nil {
		t.Fatalf("dpkg-query: %v\n%s", err, pkgVersion)
	}
	want := strings.Replace(string(pkgVersion), "~", "-", 1)
	for _, bin := range []string{"/usr/bin/regent", "/usr/bin/regentctl"} {
		out, err := run(t, bin, "version")
		if err != nil {
			t.Errorf("%s version: %v\n%s", bin, err, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 4 || lines[0] != filepath.Base(bin)+" "+want ||
			!strings.HasPrefix(lines[1], "commit: ") || strings.Contains(lines[1], "unknown") ||
			!strings.HasPrefix(lines[2], "built: ") || strings.Contains(lines[2], "unknown") ||
			lines[3] != "go: "+runtime.Version() {
			t.Errorf("%s version printed\n%s\nwant %q, a commit, a build date and go: %s", bin, out, filepath.Base(bin)+" "+want, runtime.Version())
		}
	}
}

// checkUnit runs systemd-analyze verify on the installed unit: any output
// is a failure (it exits 0 on unknown keys and only warns).
func checkUnit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Errorf("systemd-analyze is not installed (apt-get install systemd): the installed unit is unchecked")
		return
	}
	out, err := run(t, "systemd-analyze", "verify", "--man=no", "/lib/systemd/system/regent.service")
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify /lib/systemd/system/regent.service: %v\n%s", err, out)
	}
}

// checkExampleConfig: the shipped example passes `regent validate`, with
// the secrets it references as ${VAR} set to placeholders.
func checkExampleConfig(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	data, err := os.ReadFile(conffile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "/usr/bin/regent", "validate", "-c", conffile)
	cmd.Env = os.Environ()
	for _, m := range envRef.FindAllSubmatch(data, -1) {
		cmd.Env = append(cmd.Env, string(m[1])+"=placeholder")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("regent validate -c %s: %v\n%s", conffile, err, out)
	}
}

func run(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	// Not canceled when the test ends: the cleanup's purge runs through here.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	return cmd.CombinedOutput()
}
