package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the failsafe tests (#17).
const (
	// failsafeOutage is how long etcd is gone: six ttls, far past every lease.
	failsafeOutage = 60 * time.Second
	// failsafeMaxGap bounds the longest pause between two acknowledged
	// writes while failsafe bridges the outage (must-show 1).
	failsafeMaxGap = time.Second
	// fenceSlack is what a fence may take beyond the deadline (must-show 2).
	fenceSlack = time.Second
	// safetyMargin is watchdog.safety_margin as the test cluster runs it
	// (the default).
	safetyMargin = 3 * time.Second
	// failsafeActiveWait bounds how soon after etcd stops the leader
	// reports failsafe active: retry_timeout for the failed keepalive,
	// then one round.
	failsafeActiveWait = 10 * time.Second
)

// failsafeRun is a three-node cluster under a writer (a row every 10 ms,
// routed by GET /primary), with failsafe_mode as asked.
type failsafeRun struct {
	c      *testcluster.Cluster
	leader *testcluster.Node
	w      *testcluster.Writer
	table  string
	pid    int // the leader's postmaster
}

func startFailsafeRun(t *testing.T, table string, on bool) *failsafeRun {
	t.Helper()
	r := &failsafeRun{table: table}
	r.c = testcluster.New(t, testcluster.Options{DCS: map[string]any{"failsafe_mode": on}})
	r.leader = waitHealthyForSwitchover(t, r.c)
	mustExec(t, r.leader, fmt.Sprintf(createLoadTable, table))
	r.w = startWriter(t, r.c, table)
	waitAcked(t, r.w, r.leader.Name, time.Time{}, 50, replicateTimeout)
	if on {
		// The topology the leader will check: every node, in the leader's
		// own view (GET /failsafe serves the key from it).
		testcluster.Poll(t, replicateTimeout, "the leader's GET /failsafe naming every node", func(ctx context.Context) error {
			var m map[string]string
			if _, err := getJSON(ctx, r.leader.API(), "/failsafe", &m); err != nil {
				return err
			}
			if len(m) != len(r.c.Nodes()) {
				return fmt.Errorf("failsafe key %v", m)
			}
			return nil
		})
	}
	pid, ok := r.leader.PostmasterPID()
	if !ok {
		t.Fatalf("%s: no postmaster pid", r.leader.Name)
	}
	r.pid = pid
	return r
}

// waitFailsafeActive waits until n's GET /patroni reports failsafe mode
// active (failsafe_mode_is_active and Regent's failsafe block naming
// leader) and logs its etcd_error.
func waitFailsafeActive(t *testing.T, n *testcluster.Node, leader string) {
	t.Helper()
	testcluster.Poll(t, failsafeActiveWait, n.Name+" reporting failsafe mode active", func(ctx context.Context) error {
		var doc struct {
			Active bool `json:"failsafe_mode_is_active"`
			Regent struct {
				EtcdError string `json:"etcd_error"`
				Failsafe  *struct {
					Leader string `json:"leader"`
				} `json:"failsafe"`
			} `json:"regent"`
		}
		if _, err := getJSON(ctx, n.API(), "/patroni", &doc); err != nil {
			return err
		}
		if !doc.Active || doc.Regent.Failsafe == nil || doc.Regent.Failsafe.Leader != leader {
			return fmt.Errorf("failsafe_mode_is_active %v, failsafe %+v", doc.Active, doc.Regent.Failsafe)
		}
		if n.Name == leader {
			t.Logf("%s: failsafe active, etcd_error %q", n.Name, doc.Regent.EtcdError)
		}
		return nil
	})
}

// TestFailsafeBridgesAnEtcdOutage (#17 must-show 1): with failsafe_mode
// on, etcd gone for 60 s (ttl 10) under a writer at 10 ms: the longest
// gap between acknowledged writes stays below 1 s, no acknowledged write
// is lost, and after etcd returns the same node leads, its PostgreSQL
// never restarted (same postmaster). Two ways etcd goes: its server
// stopped (a restarted etcd renews every lease), and every agent cut off
// from a running etcd (which expires every lease and the leader key with
// it: the leader takes the key again, only if absent).
func TestFailsafeBridgesAnEtcdOutage(t *testing.T) {
	for _, how := range []string{"stopped", "cut"} {
		t.Run(how, func(t *testing.T) {
			r := startFailsafeRun(t, "e2e_failsafe_"+how, true)
			c, leader := r.c, r.leader
			start := time.Now()
			if how == "stopped" {
				c.StopEtcd(t)
			} else {
				c.CutEtcdAll(t)
			}
			t.Logf("etcd %s at %s; %s leads", how, rel(start, start), leader.Name)
			waitFailsafeActive(t, leader, leader.Name)
			for _, n := range c.Others(leader.Name) {
				waitFailsafeActive(t, n, leader.Name)
			}
			holdUntil(t, start.Add(failsafeOutage))
			healed := time.Now()
			if how == "stopped" {
				c.StartEtcd(t)
			} else {
				c.HealEtcdAll(t)
			}
			t.Logf("etcd back at %s", rel(healed, start))
			final := waitOnePrimary(t, c, rejoinTimeout)
			if final == nil {
				return
			}
			if final != leader {
				t.Errorf("after the outage %s leads, want %s (the leader before it)", final.Name, leader.Name)
			}
			waitAcked(t, r.w, final.Name, time.Now(), 20, replicateTimeout)
			r.w.Stop()
			acks := r.w.Snapshot().Acked
			gap := testcluster.LongestGap(acks)
			t.Logf("%d writes acknowledged; longest gap %s (from %s on %s to %s on %s)", len(acks), gap.Duration.Round(time.Millisecond),
				rel(gap.From.At, start), gap.From.Node, rel(gap.To.At, start), gap.To.Node)
			if gap.Duration >= failsafeMaxGap {
				t.Errorf("longest gap between acknowledged writes %s ≥ %s", gap.Duration.Round(time.Millisecond), failsafeMaxGap)
			}
			if during := acksBetween(acks, leader.Name, start, healed); len(during) < int(failsafeOutage/time.Second) {
				t.Errorf("only %d writes acknowledged by %s during the outage", len(during), leader.Name)
			}
			checkAcked(t, final, r.table, acks)
			if pid, ok := final.PostmasterPID(); !ok || pid != r.pid {
				t.Errorf("%s's postmaster pid %d (running %v), want %d: PostgreSQL restarted", final.Name, pid, ok, r.pid)
			}
		})
	}
}

// TestFailsafeFencesWithoutEveryMember (#17 must-show 2): as above, but
// once failsafe is active one replica is killed too: the leader can no
// longer reach every member, so it fences by the deadline of its last
// successful round — no write acknowledged later than ttl − safety_margin
// + 1 s after the kill (every successful round was sent before it).
// After etcd returns the cluster agrees on one primary.
func TestFailsafeFencesWithoutEveryMember(t *testing.T) {
	r := startFailsafeRun(t, "e2e_failsafe_member_down", true)
	checkFencedByDeadline(t, r, r.c.Others(r.leader.Name)[0])
}

// TestEtcdOutageWithoutFailsafe (#17 must-show 3): failsafe_mode off,
// etcd stopped: today's behaviour, the leader fences by its deadline.
func TestEtcdOutageWithoutFailsafe(t *testing.T) {
	r := startFailsafeRun(t, "e2e_nofailsafe", false)
	checkFencedByDeadline(t, r, nil)
}

// checkFencedByDeadline stops etcd and checks that the leader acknowledges
// no write past ttl − safety_margin + 1 s after its last acknowledgement:
// etcd's (the moment etcd stopped answering) or, when down is not nil,
// the members' (down is killed once failsafe is active); then restarts
// etcd (and down) and waits for one primary the cluster agrees on.
func checkFencedByDeadline(t *testing.T, r *failsafeRun, down *testcluster.Node) {
	t.Helper()
	c, leader := r.c, r.leader
	start := time.Now()
	c.StopEtcd(t)
	last := time.Now() // etcd answers nobody from here: the last renewal came before
	t.Logf("etcd stopped at %s", rel(last, start))
	if down != nil {
		waitFailsafeActive(t, leader, leader.Name)
		down.Kill(t)
		last = time.Now() // every successful round was sent before
		t.Logf("%s killed at %s", down.Name, rel(last, start))
	}
	bound := last.Add(c.TTL() - safetyMargin + fenceSlack)
	t.Logf("%s must stop writes by %s", leader.Name, rel(bound, start))
	holdUntil(t, bound.Add(c.TTL()))
	late := acksBetween(r.w.Snapshot().Acked, leader.Name, bound, time.Time{})
	t.Logf("%s's last acknowledged write at %s", leader.Name, rel(lastAck(r.w.Snapshot().Acked, leader.Name).At, start))
	if len(late) > 0 {
		t.Errorf("%s acknowledged %d writes after its deadline + %s (%s): %s", leader.Name, len(late), fenceSlack, rel(bound, start), testcluster.DescribeAcks(late, 5))
	}
	c.StartEtcd(t)
	if down != nil {
		down.Start(t)
	}
	final := waitOnePrimary(t, c, rejoinTimeout)
	if final == nil {
		return
	}
	t.Logf("after etcd returned: %s leads", final.Name)
	waitAcked(t, r.w, final.Name, time.Now(), 20, replicateTimeout)
	r.w.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	lost, _, err := testcluster.MissingAcks(ctx, final, r.table, r.w.Snapshot().Acked)
	if err != nil {
		t.Fatal(err)
	}
	// Asynchronous replication: a failover may lose what the new primary
	// had not received; the count tells what the outage cost.
	t.Logf("%d acknowledged writes missing on %s", len(lost), final.Name)
}
