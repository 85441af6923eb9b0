package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/postgres"
)

// unitAgentPath is the agent's path in the example unit.
const unitAgentPath = "/usr/local/bin/regent"

// verifyTimeout bounds one systemd-analyze run (it loads unit files only).
const verifyTimeout = 30 * time.Second

// TestSystemdUnitSettings checks the settings Regent depends on, without
// systemd: who it runs as, how it restarts, that stopping it never
// signals PostgreSQL, and that the stop timeout covers PostgreSQL's.
func TestSystemdUnitSettings(t *testing.T) {
	data := readExample(t, "systemd/regent.service")
	unit := parseUnit(t, data)
	for key, want := range map[string]string{
		"Service.Type":                     "notify",
		"Service.NotifyAccess":             "main",
		"Service.User":                     "postgres",
		"Service.Group":                    "postgres",
		"Service.ExecStart":                unitAgentPath + " -c /etc/regent/regent.yml",
		"Service.Restart":                  "on-failure",
		"Service.KillMode":                 "process",
		"Service.RestartPreventExitStatus": "2",
		"Service.DevicePolicy":             "closed",
		"Service.NoNewPrivileges":          "yes",
		"Install.WantedBy":                 "multi-user.target",
	} {
		if got := unit[key]; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	stop, err := time.ParseDuration(unit["Service.TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", unit["Service.TimeoutStopSec"], err)
	}
	// The agent allows PostgreSQL stop_timeout, then 5 s more, then
	// releases the leader key.
	if minStop := postgres.DefaultStopTimeout + 10*time.Second; stop < minStop {
		t.Errorf("TimeoutStopSec = %s, want ≥ postgres.stop_timeout (%s) + 10s", stop, postgres.DefaultStopTimeout)
	}
	if _, set := unit["Service.PrivateDevices"]; set {
		t.Errorf("PrivateDevices is set: it hides /dev/watchdog, which DeviceAllow cannot bring back")
	}
	for _, line := range []string{"#DeviceAllow=/dev/watchdog rw", "#WatchdogSec=60s", "#Environment=GOTRACEBACK=crash"} {
		if !bytes.Contains(data, []byte("\n"+line+"\n")) {
			t.Errorf("the unit does not show %s (commented out)", line[1:])
		}
	}
}

// parseUnit reads "Section.Key" = value; a repeated key keeps its last value.
func parseUnit(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q is not key=value", line)
			}
			out[section+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the unit as
// shipped, with the watchdog's DeviceAllow enabled, and with systemd's
// watchdog (WatchdogSec) enabled. The agent binary
// is not installed here, so /usr/local/bin/regent is replaced by a stub
// (verify checks that ExecStart's program exists). Any output is a
// failure: systemd-analyze exits 0 on unknown keys and bad values, and
// only warns. It skips, saying why, when systemd-analyze cannot run here.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("cannot verify examples/systemd/regent.service: systemd-analyze is not installed (apt-get install systemd): %v", err)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "regent")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(dir, "control", "regent-control.service")
	writeFile(t, control, "[Unit]\nDescription=control\n[Service]\nExecStart="+stub+"\n")
	if out, err := verifyUnit(t, analyze, control); err != nil || len(out) > 0 {
		t.Skipf("cannot verify examples/systemd/regent.service: systemd-analyze cannot run here (a minimal unit fails too: %v): %s", err, out)
	}
	unit := strings.ReplaceAll(string(readExample(t, "systemd/regent.service")), unitAgentPath, stub)
	variants := []struct{ name, dir, text string }{
		{"as shipped", "shipped", unit},
		{"with DeviceAllow=/dev/watchdog rw", "watchdog", strings.Replace(unit, "\n#DeviceAllow=", "\nDeviceAllow=", 1)},
		{"with WatchdogSec", "systemd-watchdog", strings.NewReplacer("\n#WatchdogSec=", "\nWatchdogSec=", "\n#Environment=GOTRACEBACK", "\nEnvironment=GOTRACEBACK").Replace(unit)},
	}
	for _, v := range variants {
		path := filepath.Join(dir, v.dir, "regent.service")
		writeFile(t, path, v.text)
		out, err := verifyUnit(t, analyze, path)
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify (%s): %v\n%s", v.name, err, out)
		}
	}
}

func verifyUnit(t *testing.T, analyze, path string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), verifyTimeout)
	defer cancel()
	// --man=no: Documentation= is not checked against installed man pages.
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	return bytes.TrimSpace(out), err
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
