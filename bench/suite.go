package bench

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Run runs every measurement p asks for, one after the other, each in a
// subtest of t (a failed repetition fails its subtest, is counted and
// listed in Problems, and the run goes on), and returns the report with
// its targets checked. It fails t at once when p is invalid.
func Run(t *testing.T, p Params) *Report {
	if err := p.Validate(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	r := &Report{StartedAt: time.Now()}
	r.Date = r.StartedAt.Format(time.DateOnly)
	r.Conditions = gatherConditions(t.Context(), p)
	say := func(format string, args ...any) {
		t.Logf(format, args...)
		if p.Progress != nil {
			fmt.Fprintf(p.Progress, "%s bench: %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
		}
	}
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: failed or incomplete (see the test log of %s/%s)", name, t.Name(), name))
		}
	}
	if p.IdleWindow > 0 || p.RESTReps > 0 || p.SwitchoverReps > 0 || p.CrashReps > 0 || p.FrozenReps > 0 || p.HostDeathReps > 0 {
		step("main", func(t *testing.T) { runMain(t, p, r, say) })
	}
	if p.Fast != nil && p.HostDeathReps > 0 {
		step("fast", func(t *testing.T) {
			say("starting a 3-node cluster, %s profile (%s)", p.Fast.Name, *p.Fast)
			c := newCluster(t, *p.Fast)
			ensureProbeTable(t, c, c.WaitHealthy(t, healthyWait))
			r.Failover = append(r.Failover, runFailover(t, c, *p.Fast, KindHostDeath, p.HostDeathReps, say))
		})
	}
	if p.FenceFast != nil && p.FenceFastReps > 0 {
		step("fence_fast", func(t *testing.T) {
			prof := *p.FenceFast
			say("starting a 3-node cluster with the fence fast path, %s profile (%s)", prof.Name, prof)
			c := newFencedCluster(t, prof)
			leader := c.WaitHealthy(t, healthyWait)
			r.noteVersion(t, leader)
			ensureProbeTable(t, c, leader)
			r.Failover = append(r.Failover, runFailover(t, c, prof, KindHostDeathFenced, p.FenceFastReps, say))
		})
	}
	if p.SwitchoverAlso != nil && p.SwitchoverReps > 0 {
		step("switchover_also", func(t *testing.T) {
			prof := *p.SwitchoverAlso
			say("starting a 3-node cluster, %s profile (%s)", prof.Name, prof)
			c := newCluster(t, prof)
			res := runSwitchovers(t, c, prof, p.SwitchoverReps, say)
			r.SwitchoverAlso = &res
		})
	}
	for _, prof := range p.FalseFailover {
		step("false_failover_ttl_"+strconv.Itoa(prof.TTL), func(t *testing.T) {
			say("false failovers: a 3-node cluster, %s profile (%s), busy for %s (pgbench %d clients, %d etcd writers)",
				prof.Name, prof, p.FalseFailoverWindow, p.PgbenchClients, p.EtcdBusyWriters)
			c := newCluster(t, prof)
			leader := c.WaitHealthy(t, healthyWait)
			r.noteVersion(t, leader)
			r.FalseFailover = append(r.FalseFailover, runFalseFailover(t, c, leader, prof, p, say))
		})
	}
	if len(p.ScaleClusters) > 0 {
		step("etcd_scale", func(t *testing.T) {
			if p.Scale == nil {
				t.Fatal("Params.Scale is unset: pass bench/scale.Run to measure scale_clusters")
			}
			r.EtcdScale = p.Scale(t, p.Main, p.ScaleClusters, p.ScaleWindow, say)
		})
	}
	r.DurationS = time.Since(r.StartedAt).Seconds()
	r.Conditions.LoadAvgAtEnd = loadAvg()
	r.Targets = checkTargets(r)
	return r
}

// runMain runs every measurement on one cluster at the main profile: the
// idle window first (a cluster nothing has disturbed yet), then the ones
// that only load it, then the faults.
func runMain(t *testing.T, p Params, r *Report, say sayf) {
	say("building the agent; starting a 3-node cluster, %s profile (%s)", p.Main.Name, p.Main)
	c := newCluster(t, p.Main)
	leader := c.WaitHealthy(t, healthyWait)
	r.noteVersion(t, leader)
	t.Run("idle", func(t *testing.T) {
		if p.IdleWindow == 0 {
			t.Skip("no idle window asked for")
		}
		say("idle: %s warm-up, then a %s window", p.Warmup, p.IdleWindow)
		res := measureIdle(t, c, p.Warmup, p.IdleWindow)
		r.Idle = &res
		for _, f := range res.Footprint {
			say("idle: %s (%s) RSS %.1f MB, CPU %.2f %% of a core", f.Node, f.Role, f.RSSMB, f.CPUPercent)
		}
		say("idle: etcd %.3f writes/s, %.3f keep-alives/s per node", res.Etcd.WritesPerNodeS, res.Etcd.KeepAlivesPerNodeS)
	})
	ensureProbeTable(t, c, c.WaitHealthy(t, healthyWait))
	if p.RESTReps > 0 {
		res := runREST(t, c, p, say)
		r.REST = &res
	}
	if p.SwitchoverReps > 0 {
		res := runSwitchovers(t, c, p.Main, p.SwitchoverReps, say)
		r.Switchover = &res
	}
	for _, k := range []struct {
		kind string
		reps int
	}{{KindCrash, p.CrashReps}, {KindFrozen, p.FrozenReps}, {KindHostDeath, p.HostDeathReps}} {
		if k.reps > 0 {
			r.Failover = append(r.Failover, runFailover(t, c, p.Main, k.kind, k.reps, say))
		}
	}
}

// sayf reports progress: to the test log and, when set, Params.Progress.
type sayf func(format string, args ...any)

// newCluster starts a 3-node cluster with prof's timings; it lives until
// t's end.
func newCluster(t *testing.T, prof Profile) *testcluster.Cluster {
	return newClusterWith(t, prof, nil)
}

// newClusterWith is newCluster with extra edits of each node's config.
func newClusterWith(t *testing.T, prof Profile, extra func(cfg map[string]any)) *testcluster.Cluster {
	return testcluster.New(t, testcluster.Options{
		Scope: "bench", TTL: prof.TTL, LoopWait: prof.LoopWait, RetryTimeout: prof.RetryTimeout,
		ExtraConfig: func(_ string, cfg map[string]any) {
			cfg["watchdog"] = map[string]any{"mode": "off", "safety_margin": fmt.Sprintf("%ds", prof.SafetyMargin)}
			cfg["log"] = map[string]any{"level": "info"} // as in production; debug costs CPU
			if extra != nil {
				extra(cfg)
			}
		},
	})
}

// noteVersion records the PostgreSQL version from the first cluster a
// run starts.
func (r *Report) noteVersion(t *testing.T, leader *testcluster.Node) {
	if r.Conditions.PostgresVersion == "unknown" {
		r.Conditions.PostgresVersion = serverVersion(t, leader)
	}
}

// serverVersion asks the leader's PostgreSQL for its version.
func serverVersion(t *testing.T, n *testcluster.Node) string {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := n.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer testcluster.CloseConn(ctx, conn)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		t.Fatalf("SHOW server_version on %s: %v", n.Name, err)
	}
	return v
}

// repeat runs fn reps times, each in its own subtest name/<rep>, and
// returns how many did not succeed. After a failure it repairs the
// cluster; after two failures in a row (or a failed repair) it gives up,
// counting the remaining repetitions as failed.
func repeat(t *testing.T, c *testcluster.Cluster, name string, reps int, say sayf, fn func(t *testing.T, rep int)) int {
	failed := 0
	t.Run(name, func(t *testing.T) {
		streak := 0
		for i := 1; i <= reps; i++ {
			if t.Run(strconv.Itoa(i), func(t *testing.T) { fn(t, i) }) {
				streak = 0
				continue
			}
			failed++
			streak++
			say("%s %d/%d failed (see the test log); repairing the cluster", name, i, reps)
			if streak >= 2 || !t.Run(strconv.Itoa(i)+"_repair", func(t *testing.T) { repair(t, c) }) {
				t.Errorf("%s: giving up after repetition %d", name, i)
				failed += reps - i
				return
			}
		}
	})
	return failed
}

// repair thaws and starts every node and waits for a healthy cluster.
func repair(t *testing.T, c *testcluster.Cluster) {
	for _, n := range c.Nodes() {
		n.Thaw(t)
		if !n.Running() {
			n.Start(t)
		}
	}
	c.WaitHealthy(t, healthyWait)
}
