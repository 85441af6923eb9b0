package agent

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/fencing"
)

func TestSuspectLeader(t *testing.T) {
	gone := LeaderProbe{}
	tests := []struct {
		name string
		in   SuspectInput
		want bool
	}{
		{"REST API answers", SuspectInput{Probe: LeaderProbe{APIReachable: true}}, false},
		{"PostgreSQL answers", SuspectInput{Probe: LeaderProbe{PGReachable: true}}, false},
		{"both answer", SuspectInput{Probe: LeaderProbe{APIReachable: true, PGReachable: true}, Streaming: true}, false},
		{"nothing answers, receiver gone", SuspectInput{Probe: gone}, true},
		{"nothing answers, receiver still says streaming (frozen primary): suspicion begins", SuspectInput{Probe: gone, Streaming: true, Received: 0x500}, true},
		{"suspecting, receiver streaming, no WAL since: holds", SuspectInput{Probe: gone, Streaming: true, Received: 0x500, SuspectedAt: 0x500, Suspecting: true}, true},
		{"suspecting, WAL still arrives: withdrawn", SuspectInput{Probe: gone, Streaming: true, Received: 0x600, SuspectedAt: 0x500, Suspecting: true}, false},
		{"suspecting, receiver gone, position moved by replay of what it had: holds", SuspectInput{Probe: gone, Received: 0x600, SuspectedAt: 0x500, Suspecting: true}, true},
		{"suspecting, the leader answers again: withdrawn", SuspectInput{Probe: LeaderProbe{PGReachable: true}, Suspecting: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := suspectLeader(tt.in); got != tt.want {
				t.Errorf("suspectLeader(%+v) = %t, want %t", tt.in, got, tt.want)
			}
		})
	}
}

func TestProbeBound(t *testing.T) {
	for _, tt := range []struct{ loopWait, retry, want time.Duration }{
		{time.Second, 3 * time.Second, 500 * time.Millisecond},
		{600 * time.Millisecond, 3 * time.Second, 300 * time.Millisecond},
		{10 * time.Second, 10 * time.Second, maxProbe},
		{10 * time.Second, 300 * time.Millisecond, 300 * time.Millisecond},
		{100 * time.Millisecond, time.Second, minProbe},
	} {
		if got := probeBound(tt.loopWait, tt.retry); got != tt.want {
			t.Errorf("probeBound(%s, %s) = %s, want %s", tt.loopWait, tt.retry, got, tt.want)
		}
	}
}

func TestAgreement(t *testing.T) {
	after := time.Second
	tests := []struct {
		name       string
		voters     []string
		held       map[string]time.Duration
		wantAgreed []string
		wantNeed   int
	}{
		{"3 nodes: both replicas long enough", []string{"pg2", "pg3"}, map[string]time.Duration{"pg2": 2 * time.Second, "pg3": time.Second}, []string{"pg2", "pg3"}, 2},
		{"3 nodes: one replica too young", []string{"pg2", "pg3"}, map[string]time.Duration{"pg2": 2 * time.Second, "pg3": 999 * time.Millisecond}, []string{"pg2"}, 2},
		{"3 nodes: only self suspects", []string{"pg2", "pg3"}, map[string]time.Duration{"pg2": time.Minute}, []string{"pg2"}, 2},
		{"5 nodes: 3 of 4 is a majority", []string{"pg2", "pg3", "pg4", "pg5"}, map[string]time.Duration{"pg2": after, "pg4": after, "pg5": after}, []string{"pg2", "pg4", "pg5"}, 3},
		{"a suspicion from a non-member does not count", []string{"pg2", "pg3"}, map[string]time.Duration{"pg2": after, "gone": after}, []string{"pg2"}, 2},
		{"2 nodes: the lone replica is a majority of one", []string{"pg2"}, map[string]time.Duration{"pg2": after}, []string{"pg2"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agreed, need := agreement(tt.voters, tt.held, after)
			if diff := cmp.Diff(tt.wantAgreed, agreed); diff != "" || need != tt.wantNeed {
				t.Errorf("agreement: need %d (want %d), agreed (-want +got):\n%s", need, tt.wantNeed, diff)
			}
		})
	}
}

func TestFenceVerdict(t *testing.T) {
	tests := []struct {
		name    string
		res     fencing.HookResult
		err     error
		want    FenceVerdict
		wantWhy string
	}{
		{"exit 0: fenced", fencing.HookResult{Ran: true}, nil, VerdictFenced, ""},
		{"exit 1: fall back", fencing.HookResult{Ran: true, ExitCode: 1}, fmt.Errorf("%w: exit status 1", fencing.ErrFenceFailed), VerdictFallback, "exit status 1"},
		{"timed out: fall back", fencing.HookResult{Ran: true, ExitCode: -1}, fmt.Errorf("%w: %w", fencing.ErrFenceFailed, context.DeadlineExceeded), VerdictFallback, "deadline exceeded"},
		{"not started: fall back", fencing.HookResult{}, fmt.Errorf("%w: no such file", fencing.ErrFenceFailed), VerdictFallback, "no such file"},
		{"no command (never confirms)", fencing.HookResult{}, nil, VerdictFallback, "did not run"},
		{"non-zero without an error (a hook double): fall back", fencing.HookResult{Ran: true, ExitCode: 3}, nil, VerdictFallback, "exited 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := fenceVerdict(tt.res, tt.err)
			if got != tt.want || !strings.Contains(why, tt.wantWhy) {
				t.Errorf("fenceVerdict = %q, %q; want %q, containing %q", got, why, tt.want, tt.wantWhy)
			}
		})
	}
}

// fast puts a fast path view into the snapshot: pg1 (the leader key, at
// revision 7) suspected by pg2 and pg3 long enough, unless changed.
func fast(mut ...func(*FastPathView)) func(*Snapshot) {
	return func(s *Snapshot) {
		f := &FastPathView{Leader: "pg1", LeaderRev: 7, Suspecting: true, Agreed: []string{"pg2", "pg3"}, Need: 2, SuspectAfter: time.Second}
		for _, m := range mut {
			m(f)
		}
		s.FastPath = f
	}
}

func TestDecideFastPath(t *testing.T) {
	peers := func(ps ...PeerStatus) func(*Snapshot) { return func(s *Snapshot) { s.Peers = ps } }
	tests := []struct {
		name       string
		s          Snapshot
		wantKind   ActionKind
		wantLeader string
		wantReason string
	}{
		{"not suspected: follow as usual", snap(fast(func(f *FastPathView) { f.Suspecting, f.Agreed = false, nil })), ActFollow, "pg1", "following leader pg1"},
		{"suspected, no majority yet: follow", snap(fast(func(f *FastPathView) { f.Agreed = []string{"pg2"} })), ActFollow, "pg1", "1 of 2 members agree"},
		{"majority, best candidate: fence", snap(fast(), peers(peer("pg3", 0x4000000))), ActFastFence, "pg1", "running fence.command against it"},
		{"majority, a peer is more advanced: follow", snap(fast(), peers(peer("pg3", 0x6000000))), ActFollow, "pg1", "pg3 is more advanced"},
		{"majority, nofailover: follow", snap(fast(), func(s *Snapshot) { s.Tags = map[string]any{"nofailover": true} }), ActFollow, "pg1", "tag nofailover"},
		{"majority, stale view: follow", snap(fast(), func(s *Snapshot) { s.ViewFresh = false }), ActFollow, "pg1", "cluster view is stale"},
		{"majority, but a failsafe hold binds: follow", snap(fast(), func(s *Snapshot) {
			s.FailsafeHold = FailsafeHold{Leader: "pg1", At: t0.Add(-time.Second), TTL: 10 * time.Second}
		}), ActFollow, "pg1", "failsafe"},
		{"hook running: wait", snap(fast(func(f *FastPathView) { f.Verdict = VerdictRunning })), ActWait, "", "running beside the loop"},
		{"hook running while the key expired: wait, no second run", snap(unlocked, fast(func(f *FastPathView) { f.Verdict = VerdictRunning })), ActWait, "", "running beside the loop"},
		{"hook running while paused with a failover to me: wait", snap(unlocked, fast(func(f *FastPathView) { f.Verdict = VerdictRunning }), func(s *Snapshot) {
			s.Config.Pause = true
			s.View.Failover.Member = "pg2"
		}), ActWait, "", "running beside the loop"},
		{"hook exit 0: take over", snap(fast(func(f *FastPathView) { f.Verdict = VerdictFenced })), ActFastTakeover, "pg1", "deleting its leader key (revision 7)"},
		{"hook failed: follow until the lease expires", snap(fast(func(f *FastPathView) { f.Verdict, f.Why = VerdictFallback, "exit status 1" })), ActFollow, "pg1", "fence.command failed (exit status 1); waiting for the lease to expire"},
		{"delete aborted: follow", snap(fast(func(f *FastPathView) { f.Verdict, f.Why = VerdictAborted, "changed" })), ActFollow, "pg1", "aborted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(tt.s)
			if p.Action.Kind != tt.wantKind || p.Action.Leader != tt.wantLeader || !strings.Contains(p.Reason, tt.wantReason) {
				t.Errorf("decide = %s %q (%s); want %s %q containing %q", p.Action.Kind, p.Action.Leader, p.Reason, tt.wantKind, tt.wantLeader, tt.wantReason)
			}
		})
	}
}

// TestPgAnswers: the PostgreSQL probe needs the postmaster's own answer;
// a socket the kernel accepts but nobody serves (a frozen host) fails
// within the probe's bound.
func TestPgAnswers(t *testing.T) {
	serve := func(answer []byte) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 8)
				if _, err := c.Read(buf); err == nil && answer != nil {
					_, _ = c.Write(answer)
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		return ln.Addr().String()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if !pgAnswers(ctx, serve([]byte("N"))) {
		t.Error("a postmaster answering N counts as unreachable")
	}
	start := time.Now()
	if pgAnswers(ctx, serve(nil)) {
		t.Error("a silent listener counts as a reachable postmaster")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the probe of a silent listener took %s, not bounded by its context", d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if pgAnswers(t.Context(), closed) {
		t.Error("nothing listening counts as reachable")
	}
}
