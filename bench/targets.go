package bench

import (
	"fmt"
	"math"
)

// The targets the report compares against (never asserted).
const (
	// targetRTOSlackMs: host-death RTO median ≤ ttl + 1 s.
	targetRTOSlackMs = 1000
	// targetFencedRTOMs: host-death RTO with the fence fast path, median
	// ≤ 3 s (#19).
	targetFencedRTOMs = 3000
	// targetUnavailableMs: switchover write unavailability median ≤ 0.3 s,
	// at every loop_wait measured (issue #18).
	targetUnavailableMs = 300
	targetRESTRPS       = 30000
	targetRESTP99Ms     = 2
	targetRSSMB         = 30
	targetIdleCPUPct    = 0.5
	// targetWritesPerNode: etcd writes per second per idle node.
	targetWritesPerNode = 0.1
	// flatTolerance: per-node writes at the most clusters within this
	// factor (+ flatFloor, so that near-zero rates compare sanely) of the
	// fewest clusters count as flat.
	flatTolerance = 1.25
	flatFloor     = 0.01
)

// TargetCheck compares one measurement with its target. Miss says by how
// much a missed target was missed; Skipped marks a target without data.
type TargetCheck struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	Skipped  bool   `json:"skipped,omitempty"`
	Miss     string `json:"miss,omitempty"`
}

// atMost checks measured ≤ limit.
func atMost(name, target string, measured, limit float64, unit, detail string) TargetCheck {
	c := TargetCheck{Name: name, Target: target, Measured: fmt.Sprintf("%s %s%s", num(measured), unit, detail), Met: measured <= limit}
	if !c.Met {
		c.Miss = fmt.Sprintf("%s %s over (%s)", num(measured-limit), unit, pct(measured, limit))
	}
	return c
}

// atLeast checks measured ≥ limit.
func atLeast(name, target string, measured, limit float64, unit, detail string) TargetCheck {
	c := TargetCheck{Name: name, Target: target, Measured: fmt.Sprintf("%s %s%s", num(measured), unit, detail), Met: measured >= limit}
	if !c.Met {
		c.Miss = fmt.Sprintf("%s %s short (%s)", num(limit-measured), unit, pct(measured, limit))
	}
	return c
}

func skipped(name, target string) TargetCheck {
	return TargetCheck{Name: name, Target: target, Measured: "not measured", Skipped: true}
}

// pct is measured relative to limit, signed ("+23 %", "−40 %").
func pct(measured, limit float64) string {
	if limit == 0 {
		return "limit 0"
	}
	return fmt.Sprintf("%+.0f %%", 100*(measured-limit)/limit)
}

// num prints with 3 significant digits, without exponent for our ranges.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// checkTargets compares the report with every target.
func checkTargets(r *Report) []TargetCheck {
	var out []TargetCheck
	for _, f := range r.Failover {
		if f.Kind == KindHostDeathFenced {
			out = append(out, fencedTarget(f))
		}
		if f.Kind != KindHostDeath {
			continue
		}
		name := fmt.Sprintf("host-death RTO, %s profile (ttl %d s)", f.Profile.Name, f.Profile.TTL)
		target := fmt.Sprintf("median ≤ ttl + 1 s = %d s", f.Profile.TTL+1)
		if f.RTO.N == 0 {
			out = append(out, skipped(name, target))
			continue
		}
		out = append(out, atMost(name, target, f.RTO.Median/1000, float64(f.Profile.TTL*1000+targetRTOSlackMs)/1000, "s", medianOf(f.RTO.N)))
	}
	out = append(out, switchoverTargets(r.Switchover, r.Conditions.Params.Main)...)
	if also := r.Conditions.Params.SwitchoverAlso; also != nil {
		out = append(out, switchoverTargets(r.SwitchoverAlso, *also)...)
	}
	out = append(out, restTargets(r.REST)...)
	out = append(out, idleTargets(r.Idle)...)
	out = append(out, scaleTargets(r.EtcdScale)...)
	for _, f := range r.FalseFailover {
		out = append(out, falseFailoverTarget(f))
	}
	return out
}

// fencedTarget: host-death RTO with the fence fast path, median ≤ 3 s
// (#19).
func fencedTarget(f FailoverResult) TargetCheck {
	name := fmt.Sprintf("host-death RTO with the fence fast path (ttl %d s)", f.Profile.TTL)
	const target = "median ≤ 3 s"
	if f.RTO.N == 0 {
		return skipped(name, target)
	}
	return atMost(name, target, f.RTO.Median/1000, targetFencedRTOMs/1000, "s", medianOf(f.RTO.N))
}

// falseFailoverTarget: no leader change in a busy, undisturbed cluster.
func falseFailoverTarget(f FalseFailoverResult) TargetCheck {
	c := TargetCheck{Name: fmt.Sprintf("false failovers under load, %s profile (ttl %d s)", f.Profile.Name, f.Profile.TTL),
		Target: "0", Measured: fmt.Sprintf("%d leader changes, %d new leader keys in %.0f s", f.Failovers, f.Acquisitions, f.DurationS),
		Met: f.Failovers == 0 && f.Acquisitions == 0}
	if !c.Met {
		c.Miss = fmt.Sprintf("%d leader changes, %d new leader keys", f.Failovers, f.Acquisitions)
	}
	return c
}

func medianOf(n int) string { return fmt.Sprintf(" (median of %d)", n) }

func switchoverTargets(s *SwitchoverResult, prof Profile) []TargetCheck {
	const target, ltarget = "median ≤ 0.3 s", "0"
	at := fmt.Sprintf(", loop_wait %d s", prof.LoopWait)
	name, lname := "switchover write unavailability"+at, "switchover lost acknowledged writes"+at
	if s == nil || s.Unavailable.N == 0 {
		return []TargetCheck{skipped(name, target), skipped(lname, ltarget)}
	}
	lost := TargetCheck{Name: lname, Target: ltarget, Measured: fmt.Sprintf("%d of %d acknowledged", s.Lost, s.Acked), Met: s.Lost == 0}
	if !lost.Met {
		lost.Miss = fmt.Sprintf("%d acknowledged writes lost", s.Lost)
	}
	return []TargetCheck{
		atMost(name, target, s.Unavailable.Median/1000, targetUnavailableMs/1000.0, "s", medianOf(s.Unavailable.N)),
		lost,
	}
}

func restTargets(r *RESTResult) []TargetCheck {
	const name, target = "GET /primary throughput", "≥ 30,000 req/s"
	const pname, ptarget = "GET /primary p99 latency", "≤ 2 ms"
	if r == nil || r.RPS.N == 0 {
		return []TargetCheck{skipped(name, target), skipped(pname, ptarget)}
	}
	return []TargetCheck{
		atLeast(name, target, r.RPS.Median, targetRESTRPS, "req/s", medianOf(r.RPS.N)),
		atMost(pname, ptarget, r.P99.Median, targetRESTP99Ms, "ms", medianOf(r.P99.N)),
	}
}

func idleTargets(idle *IdleResult) []TargetCheck {
	const rname, rtarget = "agent RSS", "≤ 30 MB"
	const cname, ctarget = "agent idle CPU", "≤ 0.5 % of one core"
	const ename, etarget = "etcd writes per idle node", "≤ 0.1 /s"
	if idle == nil || len(idle.Footprint) == 0 {
		return []TargetCheck{skipped(rname, rtarget), skipped(cname, ctarget), skipped(ename, etarget)}
	}
	var rss, cpu NodeFootprint
	for _, f := range idle.Footprint {
		if f.RSSMaxMB > rss.RSSMaxMB {
			rss = f
		}
		if f.CPUPercent >= cpu.CPUPercent {
			cpu = f
		}
	}
	e := idle.Etcd
	return []TargetCheck{
		atMost(rname, rtarget, rss.RSSMaxMB, targetRSSMB, "MB", fmt.Sprintf(" (highest: %s, %s; at the end anon %.1f + file-backed %.1f MB)", rss.Node, rss.Role, rss.AnonMB, rss.FileMB)),
		atMost(cname, ctarget, cpu.CPUPercent, targetIdleCPUPct, "%", fmt.Sprintf(" (highest: %s, %s)", cpu.Node, cpu.Role)),
		atMost(ename, etarget, e.WritesPerNodeS, targetWritesPerNode, "/s",
			fmt.Sprintf(" (put+txn %s /s, keep-alives %s /s)", num(e.PutPlusTxnPerNodeS), num(e.KeepAlivesPerNodeS))),
	}
}

func scaleTargets(points []EtcdLoad) []TargetCheck {
	const name, target = "etcd writes per node with N clusters", "≤ 0.1 /s at every N"
	const fname, ftarget = "etcd writes per node, flat in N", "largest N ≤ 1.25 × smallest N + 0.01 /s"
	const rname, rtarget = "etcd requests per node (writes + reads + keep-alives), flat in N", "largest N ≤ 1.25 × smallest N + 0.01 /s"
	if len(points) == 0 {
		return []TargetCheck{skipped(name, target), skipped(fname, ftarget), skipped(rname, rtarget)}
	}
	worst := points[0]
	for _, p := range points {
		if p.WritesPerNodeS > worst.WritesPerNodeS {
			worst = p
		}
	}
	first, last := points[0], points[len(points)-1]
	flat := func(name, target string, f func(EtcdLoad) float64) TargetCheck {
		return atMost(name, target, f(last), flatTolerance*f(first)+flatFloor, "/s",
			fmt.Sprintf(" at N = %d vs %s /s at N = %d", last.Clusters, num(f(first)), first.Clusters))
	}
	return []TargetCheck{
		atMost(name, target, worst.WritesPerNodeS, targetWritesPerNode, "/s", fmt.Sprintf(" (highest, at N = %d)", worst.Clusters)),
		flat(fname, ftarget, func(l EtcdLoad) float64 { return l.WritesPerNodeS }),
		flat(rname, rtarget, func(l EtcdLoad) float64 { return l.WritesPerNodeS + l.RangesPerNodeS + l.KeepAlivesPerNodeS }),
	}
}
