package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	"golang.org/x/sys/unix"

	"github.com/regent-ha/regent/internal/buildinfo"
)

// Report is everything a run measured, and the conditions it ran in.
type Report struct {
	Date       string            `json:"date"`
	StartedAt  time.Time         `json:"started_at"`
	DurationS  float64           `json:"duration_s"`
	Conditions Conditions        `json:"conditions"`
	Failover   []FailoverResult  `json:"failover"`
	Switchover *SwitchoverResult `json:"switchover,omitempty"`
	// SwitchoverAlso is the switchover at Params.SwitchoverAlso.
	SwitchoverAlso *SwitchoverResult `json:"switchover_also,omitempty"`
	REST           *RESTResult       `json:"rest,omitempty"`
	Idle           *IdleResult       `json:"idle,omitempty"`
	EtcdScale      []EtcdLoad        `json:"etcd_scale,omitempty"`
	// FalseFailover is one busy, undisturbed run per profile.
	FalseFailover []FalseFailoverResult `json:"false_failover,omitempty"`
	Targets       []TargetCheck         `json:"targets"`
	// Problems lists what failed or was skipped (see the test log).
	Problems []string `json:"problems,omitempty"`
}

// Conditions describe the machine and the settings of a run.
type Conditions struct {
	CPUs            int      `json:"cpus"`
	CPUModel        string   `json:"cpu_model"`
	Kernel          string   `json:"kernel"`
	MemTotalMB      float64  `json:"mem_total_mb"`
	LoadAvgAtStart  string   `json:"loadavg_at_start"`
	LoadAvgAtEnd    string   `json:"loadavg_at_end"`
	GoVersion       string   `json:"go_version"`
	PostgresVersion string   `json:"postgres_version"`
	EtcdVersion     string   `json:"etcd_version"`
	RegentVersion   string   `json:"regent_version"`
	Commit          string   `json:"commit"`
	Params          Params   `json:"params"`
	Notes           []string `json:"notes"`
}

// MarshalJSON writes durations as Go duration strings ("10s").
func (p Params) MarshalJSON() ([]byte, error) {
	type plain Params
	return json.Marshal(struct {
		plain
		RESTDuration        string `json:"rest_duration"`
		Warmup              string `json:"warmup"`
		IdleWindow          string `json:"idle_window"`
		ScaleWindow         string `json:"scale_window"`
		FalseFailoverWindow string `json:"false_failover_window"`
	}{plain(p), p.RESTDuration.String(), p.Warmup.String(), p.IdleWindow.String(), p.ScaleWindow.String(), p.FalseFailoverWindow.String()})
}

// gatherConditions reads the machine's description; what cannot be read
// is "unknown". PostgresVersion is filled in once a cluster runs.
func gatherConditions(ctx context.Context, p Params) Conditions {
	c := Conditions{
		CPUs: runtime.NumCPU(), CPUModel: "unknown", Kernel: "unknown", LoadAvgAtStart: "unknown",
		GoVersion: runtime.Version(), PostgresVersion: "unknown", EtcdVersion: version.Version,
		RegentVersion: buildinfo.Version, Commit: gitCommit(ctx), Params: p,
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				c.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		c.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	c.LoadAvgAtStart = loadAvg()
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				c.MemTotalMB = kb / 1024
			}
		}
	}
	c.Notes = notes(p)
	return c
}

// notes say how each number was obtained.
func notes(p Params) []string {
	return []string{
		fmt.Sprintf("One machine (%d cores) runs everything: the embedded etcd and the load generator and clients (in the bench process), 3 agents and 3 PostgreSQL servers.", runtime.NumCPU()),
		"PostgreSQL runs with the test harness settings (fsync off, shared_buffers 16MB, max_connections 30); agents log at info; watchdog off.",
		fmt.Sprintf("RTO: t0 is taken just before the first signal; the client tries every node directly every %s (one connection per node, each connect + INSERT bounded by %s) and RTO ends at the first acknowledged INSERT on a node other than the victim (the victim itself for a PostgreSQL crash). Detection = detected_at − t0, election = elected_at − detected_at, promotion = promoted_at − elected_at, from the winner's decision record (GET /decisions); client = first write − promoted_at.", probeEvery, probeTimeout),
		fmt.Sprintf("Switchover: a writer inserts a numbered row every %s, sticking to the node that acknowledged its last write and trying every node at once after a failure (each try bounded by %s). Write unavailability = the longest gap between consecutive acknowledgements; lost = acknowledged ids missing from the new primary afterwards.", writeEvery, writeTimeout),
		fmt.Sprintf("REST: GET %s on the leader over %d keep-alive connections from a Go load generator in the bench process, which shares the cores with the agent (the CPU each used is reported); latencies are the client's.", restPath, p.RESTConns),
		"Footprint: the agent process only (not PostgreSQL): VmRSS from /proc/<pid>/status, utime+stime from /proc/<pid>/stat.",
		fmt.Sprintf("Fence fast path: fence.fast_failover on with the default suspect_after; fence.command is the chaos suite's hook (internal/chaos/fencehook.go): it SIGKILLs the target's agent and PostgreSQL (already dead after a host death), waits until none of them runs and exits 0. Same fault, prober and split as host_death, %d repetitions.", p.FenceFastReps),
		fmt.Sprintf("False failovers: pgbench -i -s %d, then pgbench -n -c %d -j %d (no rate limit) against the leader in runs of at most %s, restarted on whoever leads; %d goroutines put %d-byte values under %s as fast as etcd answers, history compacted every %s; the leader key and the leader's /metrics are read every %s.",
			pgbenchScale, p.PgbenchClients, min(p.PgbenchClients, 2), pgbenchChunk, p.EtcdBusyWriters, etcdBusyValue, etcdBusyPrefix, etcdCompactEvery, leaderSampleEvery),
		"etcd: writes = revision increments (each put, delete or writing Txn once); put+txn = etcd_mvcc_put_total + etcd_mvcc_txn_total (counts a CAS write twice and read-only multi-key Txns once); keep-alives = etcd_debugging_lease_renewed_total. Scale: 3 in-process agents per cluster (agent.New with a fake PostgreSQL, the real dcs client, no REST server), each cluster its own scope, all on one embedded etcd. A fake PostgreSQL's WAL position never moves, as on a fully idle server, so the member-key refreshes that follow a moving WAL position (at most one per member per 10 s) do not happen there; the real cluster's idle window includes them.",
	}
}

// loadAvg is the 1, 5 and 15 minute load averages: how busy the machine
// was besides the benchmark.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// gitCommit names the checked-out commit (with -dirty), read-only.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		commit += "-dirty"
	}
	return commit
}

// Write writes the report as dir/<date>.json and dir/<date>.md (a second
// run the same day gets <date>.2.json, …) and returns both paths.
func Write(dir string, r *Report) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("bench results: %w", err)
	}
	base := filepath.Join(dir, r.Date)
	for i := 2; exists(base+".json") || exists(base+".md"); i++ {
		base = filepath.Join(dir, fmt.Sprintf("%s.%d", r.Date, i))
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("bench results: %w", err)
	}
	jsonPath, mdPath = base+".json", base+".md"
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("bench results: %w", err)
	}
	if err := os.WriteFile(mdPath, []byte(Markdown(r)), 0o644); err != nil {
		return "", "", fmt.Errorf("bench results: %w", err)
	}
	return jsonPath, mdPath, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
