package bench

import (
	"fmt"
	"strings"
)

// Markdown renders the report's summary: conditions, targets, then one
// section per measurement.
func Markdown(r *Report) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	c := r.Conditions
	w("# Regent benchmark, %s\n\n", r.Date)
	w("%d cores (%s), %s, %.0f MB RAM; load average %s at the start, %s at the end. Go %s, PostgreSQL %s, etcd %s (embedded), Regent %s at %s. Run took %.0f s.\n\n",
		c.CPUs, c.CPUModel, c.Kernel, c.MemTotalMB, c.LoadAvgAtStart, c.LoadAvgAtEnd, strings.TrimPrefix(c.GoVersion, "go"),
		c.PostgresVersion, c.EtcdVersion, c.RegentVersion, c.Commit, r.DurationS)
	p := c.Params
	w("Timings: main profile %s (%s)", p.Main.Name, p.Main)
	if p.Fast != nil {
		w("; fast profile (%s)", *p.Fast)
	}
	if p.SwitchoverAlso != nil {
		w("; switchover also at the %s profile (%s)", p.SwitchoverAlso.Name, *p.SwitchoverAlso)
	}
	if p.FenceFast != nil {
		w("; fence fast path at the %s profile (%s)", p.FenceFast.Name, *p.FenceFast)
	}
	w(". Repetitions: host death %d per profile, with the fence fast path %d, frozen host %d, PostgreSQL crash %d, switchover %d, REST %d × %s; idle window %s; etcd scale at N = %v × %s; false failovers %s per profile.\n\n",
		p.HostDeathReps, p.FenceFastReps, p.FrozenReps, p.CrashReps, p.SwitchoverReps, p.RESTReps, p.RESTDuration, p.IdleWindow, p.ScaleClusters, p.ScaleWindow, p.FalseFailoverWindow)
	targetsMD(w, r.Targets)
	failoverMD(w, r.Failover)
	switchoverMD(w, r.Switchover)
	switchoverMD(w, r.SwitchoverAlso)
	restMD(w, r.REST)
	idleMD(w, r.Idle)
	scaleMD(w, r.EtcdScale)
	falseFailoverMD(w, r.FalseFailover)
	if len(r.Problems) > 0 {
		w("## Problems\n\n")
		for _, pr := range r.Problems {
			w("- %s\n", pr)
		}
		w("\n")
	}
	w("## How it was measured\n\n")
	for _, n := range c.Notes {
		w("- %s\n", n)
	}
	return b.String()
}

type writef func(format string, args ...any)

func targetsMD(w writef, ts []TargetCheck) {
	w("## Targets\n\n| | target | measured | result |\n|---|---|---|---|\n")
	for _, t := range ts {
		result := "met"
		switch {
		case t.Skipped:
			result = "—"
		case !t.Met:
			result = "**missed**: " + t.Miss
		}
		w("| %s | %s | %s | %s |\n", t.Name, t.Target, t.Measured, result)
	}
	w("\n")
}

// sum formats a summary of milliseconds as seconds or milliseconds.
func sum(s Summary, unit string) string {
	if s.N == 0 {
		return "—"
	}
	if unit == "s" {
		return fmt.Sprintf("%s (%s–%s)", num(s.Median/1000), num(s.Min/1000), num(s.Max/1000))
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

func failoverMD(w writef, rs []FailoverResult) {
	if len(rs) == 0 {
		return
	}
	w("## Failover RTO\n\nSeconds: median (min–max). RTO = fault → first acknowledged write. Detection, election and promotion come from the winner's decision record; client = promoted_at → first write, negative when PostgreSQL accepted writes before the agent saw its promotion end. Victim back = restart or thaw → the victim streams again. The fence fast path splits detection (this member began to suspect the old leader) from agreement (a majority agreed); its election starts at the agreement and includes fence.command's run, shown apart. %s is host death with fence.fast_failover on and the harness's fence hook (it kills the victim's processes, confirms them gone and exits 0); host_death beside it is the lease path.\n\n", KindHostDeathFenced)
	w("| fault | profile | ok/reps | RTO | detection | agreement | election | of which fence | promotion | client | victim back (s) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range rs {
		w("| %s | %s (ttl %d) | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Kind, f.Profile.Name, f.Profile.TTL,
			f.Reps-f.Failed, f.Reps, sum(f.RTO, "s"), sum(f.Detection, "s"), sum(f.Agree, "s"), sum(f.Election, "s"),
			sum(f.Fence, "s"), sum(f.Promotion, "s"), sum(f.Client, "s"), sum(f.Recover, "s"))
	}
	w("\n")
	for _, f := range rs {
		for _, s := range f.Samples {
			if s.Note != "" {
				w("- %s %d: %s\n", f.Kind, s.Rep, s.Note)
			}
		}
	}
	w("\n")
}

func switchoverMD(w writef, s *SwitchoverResult) {
	if s == nil {
		return
	}
	w("## Planned switchover, %s profile (%s)\n\n%d/%d completed; %d writes acknowledged, %d lost, %d acknowledged twice.\n\n",
		s.Profile.Name, s.Profile, s.Reps-s.Failed, s.Reps, s.Acked, s.Lost, s.DualAcks)
	w("| | ms: median (min–max) |\n|---|---|\n")
	w("| write unavailability | %s |\n| total (record created → last event) | %s |\n", sum(s.Unavailable, "ms"), sum(s.Total, "ms"))
	for _, st := range s.Stages {
		w("| %s | %s |\n", st.Stage, sum(st.Ms, "ms"))
	}
	w("\n")
}

func restMD(w writef, r *RESTResult) {
	if r == nil {
		return
	}
	w("## REST health endpoint\n\nGET %s on the leader, %d keep-alive connections, %d × %.0f s (%d ok): median (min–max).\n\n",
		r.Path, r.Conns, r.Reps, r.DurationS, r.Reps-r.Failed)
	w("| req/s | p50 ms | p99 ms |\n|---|---|---|\n| %s | %s | %s |\n\n", sum(r.RPS, ""), sum(r.P50, "ms"), sum(r.P99, "ms"))
	for i, s := range r.Samples {
		w("- run %d: %d requests, %d errors, max %s ms; agent used %.2f cores, the load generator (bench process) %.2f cores; agent RSS %.1f MB\n",
			i+1, s.Requests, s.Errors, num(s.MaxMs), s.ServerCores, s.LoadgenCores, s.ServerRSSMB)
	}
	w("\n")
}

func idleMD(w writef, idle *IdleResult) {
	if idle == nil {
		return
	}
	w("## Footprint at idle (%.0f s)\n\nRSS at the end of the window = anonymous (Go heap, stacks, runtime) + file-backed (the mapped binary).\n\n", idle.WindowS)
	w("| node | role | RSS MB | anon MB | file MB | max RSS MB | CPU s | CPU %% of a core |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range idle.Footprint {
		w("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.2f | %.3f |\n", f.Node, f.Role, f.RSSMB, f.AnonMB, f.FileMB, f.RSSMaxMB, f.CPUSeconds, f.CPUPercent)
	}
	w("\n## etcd load at idle, per node\n\n")
	etcdTable(w, []EtcdLoad{idle.Etcd})
}

func scaleMD(w writef, points []EtcdLoad) {
	if len(points) == 0 {
		return
	}
	w("## etcd load per node as clusters share one etcd\n\nFake-PostgreSQL agents, 3 per cluster.\n\n")
	etcdTable(w, points)
}

func etcdTable(w writef, points []EtcdLoad) {
	w("| clusters | nodes | window s | writes/s | put+txn/s | puts/s | deletes/s | txns/s | ranges/s | keep-alives/s | raft proposals/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, l := range points {
		w("| %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n", l.Clusters, l.Nodes, l.WindowS,
			num(l.WritesPerNodeS), num(l.PutPlusTxnPerNodeS), num(l.PutsPerNodeS), num(l.DeletesPerNodeS),
			num(l.TxnsPerNodeS), num(l.RangesPerNodeS), num(l.KeepAlivesPerNodeS), num(l.ProposalsPerNodeS))
	}
	w("\n")
}

func falseFailoverMD(w writef, rs []FalseFailoverResult) {
	if len(rs) == 0 {
		return
	}
	w("## False failovers under load\n\nEach profile: a 3-node cluster of its own, pgbench at full speed on the primary and goroutines writing etcd as fast as it answers, nobody touching the cluster: every leader change is one nobody asked for. Leader changes = a new holder of the leader key; new keys = every new leader key, the same holder re-taking it included. Lease age = ttl − safety_margin − the leader's regent_lease_remaining_seconds, sampled every %s: how long ago its last acknowledged renewal was sent (the agent fences when it reaches ttl − safety_margin).\n\n", leaderSampleEvery)
	w("| profile | window | leader changes | new leader keys | leaderless s | pgbench tps | etcd puts/s | lease age ms: p50 / p99 / max (n) |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range rs {
		age := "—"
		if a := f.LeaseAge; a.N > 0 {
			age = fmt.Sprintf("%s / %s / %s (%d)", num(a.P50), num(a.P99), num(a.Max), a.N)
		}
		w("| %s (ttl %d s) | %.0f s | %d | %d | %s | %s | %s | %s |\n", f.Profile.Name, f.Profile.TTL, f.DurationS,
			f.Failovers, f.Acquisitions, num(f.LeaderlessS), num(f.PgbenchTPS), num(f.EtcdPutsS), age)
	}
	w("\n")
	for _, f := range rs {
		for _, e := range f.Changes {
			leader := e.Leader
			if leader == "" {
				leader = "no leader key"
			}
			w("- ttl %d, %.1f s: %s\n", f.Profile.TTL, e.AtS, leader)
		}
		if f.Note != "" {
			w("- ttl %d: %s\n", f.Profile.TTL, f.Note)
		}
	}
	w("\n")
}
