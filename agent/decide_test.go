package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/switchover"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func strp(s string) *string { return &s }

// view builds a cluster view: leader "" = unlocked.
func view(leader string, members ...string) *dcs.Cluster {
	c := &dcs.Cluster{Initialize: strp("7000000000000000001"), Members: map[string]dcs.Member{}}
	if leader != "" {
		c.Leader = &dcs.Leader{Name: leader}
	}
	for _, m := range members {
		c.Members[m] = dcs.Member{ConnURL: "postgres://127.0.0.1:5432/postgres", APIURL: "http://127.0.0.1:8008/patroni", Timeline: 1}
	}
	return c
}

func replica(wal postgres.LSN) PGState {
	return PGState{Running: true, SystemID: 7000000000000000001,
		Status: postgres.Status{Running: true, InRecovery: true, Timeline: 1, ReceiveLSN: wal, ReplayLSN: wal, SystemID: 7000000000000000001, Streaming: true}}
}

func primary(wal postgres.LSN) PGState {
	return PGState{Running: true, SystemID: 7000000000000000001,
		Status: postgres.Status{Running: true, Timeline: 1, CurrentLSN: wal, SystemID: 7000000000000000001}}
}

func snap(mut ...func(*Snapshot)) Snapshot {
	s := Snapshot{Now: t0, Name: "pg2", Config: config.DefaultDynamic(), View: view("pg1", "pg1", "pg2", "pg3"), ViewFresh: true, PG: replica(0x5000000), WatchdogUsable: true}
	for _, m := range mut {
		m(&s)
	}
	return s
}

func peer(name string, wal postgres.LSN) PeerStatus {
	return PeerStatus{Name: name, Reachable: true, InRecovery: true, WAL: wal, Timeline: 1}
}

func unlocked(s *Snapshot) { s.View.Leader = nil }

// keyNamesMe: the leader key names pg2 (this member), from this session
// only together with leading.
func keyNamesMe(s *Snapshot) { s.View.Leader = &dcs.Leader{Name: "pg2"} }

func leading(s *Snapshot) {
	keyNamesMe(s)
	s.Lease = LeaseState{Leading: true, Deadline: t0.Add(time.Second)}
}

// uninitialized: no initialize key, no members, an empty data directory.
func uninitialized(s *Snapshot) {
	s.View = &dcs.Cluster{Members: map[string]dcs.Member{}}
	s.PG = PGState{DataDirEmpty: true}
}

// crashedLeader: this member leads (deadline 5 s ahead), its PostgreSQL
// down for down.
func crashedLeader(down time.Duration) func(*Snapshot) {
	return func(s *Snapshot) {
		keyNamesMe(s)
		s.PG = PGState{DownSince: t0.Add(-down)}
		s.Lease = LeaseState{Leading: true, Deadline: t0.Add(5 * time.Second)}
	}
}

// designated: the failover key names this member.
func designated(s *Snapshot) { s.View.Failover = dcs.Failover{Member: "pg2"} }

func stoppedPG(s *Snapshot) { s.PG = PGState{SystemID: 7000000000000000001} }

// checkPlan compares a plan's action and looks for want in its reason.
func checkPlan(t *testing.T, got Plan, wantAction Action, wantReason string) {
	t.Helper()
	if d := cmp.Diff(wantAction, got.Action); d != "" {
		t.Errorf("action (-want +got):\n%s\nreason: %s", d, got.Reason)
	}
	if !strings.Contains(got.Reason, wantReason) {
		t.Errorf("reason %q does not contain %q", got.Reason, wantReason)
	}
}

// planCase is a decide table row checked by its whole action and reason.
type planCase struct {
	name       string
	snap       Snapshot
	wantAction Action
	wantReason string // substring
}

// checkPlans runs decide on each row's snapshot, a subtest each.
func checkPlans(t *testing.T, tests []planCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPlan(t, decide(tt.snap), tt.wantAction, tt.wantReason)
		})
	}
}

func TestDecide(t *testing.T) {
	checkPlans(t, []planCase{
		{"leader past its deadline fences before anything else",
			snap(func(s *Snapshot) {
				s.PG = primary(0x5000000)
				s.Lease = LeaseState{Leading: true, Deadline: t0.Add(-time.Millisecond)}
				s.View = nil // even without a view
			}),
			Action{Kind: ActFence}, "lease deadline passed"},
		{"a failed fence is retried before anything else (#15 item 4)",
			snap(func(s *Snapshot) {
				s.PG = primary(0x5000000)
				s.Lease = LeaseState{Unfenced: true}
				s.View = nil
			}),
			Action{Kind: ActFence}, "earlier fence could not stop"},
		{"paused: an empty data directory is not cloned (#15 item 8)",
			snap(func(s *Snapshot) {
				s.Config.Pause = true
				s.PG = PGState{DataDirEmpty: true}
			}),
			Action{Kind: ActWait}, "paused: data directory is empty"},
		{"paused: an uninitialized cluster is not bootstrapped (#15 item 8)",
			snap(func(s *Snapshot) {
				s.Config.Pause = true
				uninitialized(s)
			}),
			Action{Kind: ActWait}, "paused: data directory is empty"},
		{"restart: the stop runs beside the loop, nothing starts PostgreSQL meanwhile",
			snap(func(s *Snapshot) {
				leading(s)
				s.PG = PGState{SystemID: 7000000000000000001}
				s.Restart = RestartStopping
			}),
			Action{Kind: ActWait}, "restart: PostgreSQL is stopping"},
		{"restart: stopped, the leader starts again as the primary, even paused",
			snap(func(s *Snapshot) {
				keyNamesMe(s)
				s.Config.Pause = true
				s.PG = PGState{SystemID: 7000000000000000001}
				s.Lease = LeaseState{Leading: true, Deadline: t0.Add(time.Second)}
				s.Restart = RestartStarting
			}),
			Action{Kind: ActStartPrimary}, "starting PostgreSQL again as the primary"},
		{"restart: stopped, a replica starts again following the leader",
			snap(func(s *Snapshot) {
				s.PG = PGState{SystemID: 7000000000000000001}
				s.Restart = RestartStarting
			}),
			Action{Kind: ActStartReplica, Leader: "pg1"}, "starting PostgreSQL again read-only"},
		{"a clone or rewind beside the loop: nothing else is decided",
			snap(func(s *Snapshot) {
				s.View.Leader = nil // even a leaderless cluster does not make it race
				s.PG = PGState{SystemID: 7000000000000000001}
				s.Busy = "rewind"
			}),
			Action{Kind: ActWait}, "rewind running beside the loop"},
		{"leader exactly at its deadline fences",
			snap(func(s *Snapshot) {
				s.PG = primary(0x5000000)
				s.Lease = LeaseState{Leading: true, Deadline: t0}
			}),
			Action{Kind: ActFence}, "deadline passed"},
		{"leader within its deadline leads",
			snap(func(s *Snapshot) {
				leading(s)
				s.PG = primary(0x5000000)
			}),
			Action{Kind: ActLead}, "leading"},
		{"leader whose required watchdog became unusable steps down",
			snap(func(s *Snapshot) {
				leading(s)
				s.PG = primary(0x5000000)
				s.WatchdogUsable = false
			}),
			Action{Kind: ActRelease}, "watchdog is required but unusable"},
		{"leader still in recovery promotes",
			snap(leading),
			Action{Kind: ActPromote}, "promoting"},
		{"no view yet waits",
			snap(func(s *Snapshot) { s.View = nil }),
			Action{Kind: ActWait}, "no cluster view"},
		{"empty data dir, uninitialized cluster: bootstrap",
			snap(uninitialized),
			Action{Kind: ActBootstrap}, "not initialized"},
		{"empty data dir, nofailover never bootstraps",
			snap(func(s *Snapshot) {
				uninitialized(s)
				s.Tags = config.Tags{"nofailover": true}
			}),
			Action{Kind: ActWait}, "nofailover"},
		{"empty data dir, unusable required watchdog does not bootstrap",
			snap(func(s *Snapshot) {
				uninitialized(s)
				s.WatchdogUsable = false
			}),
			Action{Kind: ActWait}, "watchdog is unusable"},
		{"empty data dir, stale view does not bootstrap",
			snap(func(s *Snapshot) {
				uninitialized(s)
				s.ViewFresh = false
			}),
			Action{Kind: ActWait}, "stale"},
		{"empty data dir while another member bootstraps waits",
			snap(func(s *Snapshot) {
				s.View = &dcs.Cluster{Initialize: strp(""), Members: map[string]dcs.Member{}}
				s.PG = PGState{DataDirEmpty: true}
			}),
			Action{Kind: ActWait}, "another member is bootstrapping"},
		{"empty data dir with a leader clones",
			snap(func(s *Snapshot) { s.PG = PGState{DataDirEmpty: true} }),
			Action{Kind: ActClone, Leader: "pg1"}, "cloning from leader pg1"},
		{"empty data dir, leader without a member key yet waits",
			snap(func(s *Snapshot) { s.PG = PGState{DataDirEmpty: true}; delete(s.View.Members, "pg1") }),
			Action{Kind: ActWait}, "waiting for leader pg1 to publish"},
		{"empty data dir, initialized, no leader waits",
			snap(func(s *Snapshot) { unlocked(s); s.PG = PGState{DataDirEmpty: true} }),
			Action{Kind: ActWait}, "no leader to clone from"},
		{"empty data dir, initialized, no leader, a no_leader method creates a replica",
			snap(func(s *Snapshot) { unlocked(s); s.PG = PGState{DataDirEmpty: true}; s.CreateWithoutLeader = true }),
			Action{Kind: ActClone}, "no_leader method"},
		{"foreign system id refuses to join",
			snap(func(s *Snapshot) { s.PG.SystemID = 42 }),
			Action{Kind: ActRefuse}, "belongs to another cluster"},
		{"stopped replica starts following the leader",
			snap(func(s *Snapshot) { s.PG = PGState{SystemID: 7000000000000000001} }),
			Action{Kind: ActStartReplica, Leader: "pg1"}, "starting as a replica of pg1"},
		{"stopped, no leader: start read-only",
			snap(func(s *Snapshot) { unlocked(s); s.PG = PGState{} }),
			Action{Kind: ActStartReplica}, "starting read-only"},
		{"stopped, stale leader key naming me: start read-only",
			snap(func(s *Snapshot) { keyNamesMe(s); s.PG = PGState{} }),
			Action{Kind: ActStartReplica}, "earlier session"},
		{"crashed primary within primary_start_timeout restarts in place",
			snap(crashedLeader(3 * time.Second)),
			Action{Kind: ActStartPrimary}, "restarting it in place"},
		{"crashed primary past primary_start_timeout releases the lease",
			snap(crashedLeader(11 * time.Second)),
			Action{Kind: ActRelease}, "primary_start_timeout"},
		{"primary without the lease while another leads demotes",
			snap(func(s *Snapshot) { s.PG = primary(0x5000000) }),
			Action{Kind: ActDemote, Leader: "pg1"}, "pg1 holds the leader key"},
		{"primary without the lease in an unlocked cluster demotes, never takes the key back",
			snap(func(s *Snapshot) { unlocked(s); s.PG = primary(0x9000000) }),
			Action{Kind: ActDemote}, "demoting before racing"},
		{"primary under a leader key from an earlier session demotes",
			snap(func(s *Snapshot) { keyNamesMe(s); s.PG = primary(0x5000000) }),
			Action{Kind: ActDemote}, "earlier session"},
		{"running replica follows the leader",
			snap(),
			Action{Kind: ActFollow, Leader: "pg1"}, "following leader pg1"},
		{"replica whose own current lease still carries the leader key releases it",
			snap(func(s *Snapshot) {
				s.View.Leader = &dcs.Leader{Name: "pg2", Lease: 77}
				s.Lease = LeaseState{ID: 77}
			}),
			Action{Kind: ActRelease}, "still on my lease"},
		{"replica under a stale leader key naming me waits",
			snap(keyNamesMe),
			Action{Kind: ActWait}, "waiting for it to expire"},
		{"unlocked: most advanced replica races",
			snap(func(s *Snapshot) {
				unlocked(s)
				s.Peers = []PeerStatus{peer("pg3", 0x4000000)}
			}),
			Action{Kind: ActRace}, "most advanced"},
		{"unlocked: a more advanced peer wins",
			snap(func(s *Snapshot) {
				unlocked(s)
				s.Peers = []PeerStatus{peer("pg3", 0x6000000)}
			}),
			Action{Kind: ActWait}, "pg3 is more advanced"},
		{"a leader quiescing for a switchover waits, PostgreSQL running or not",
			snap(leading, stoppedPG, func(s *Snapshot) { s.Quiescing = true }),
			Action{Kind: ActWait}, "writes quiesced"},
		{"restart: stopped, under a leader key naming me from an earlier session: no upstream",
			snap(keyNamesMe, stoppedPG, func(s *Snapshot) { s.Restart = RestartStarting }),
			Action{Kind: ActStartReplica}, "starting PostgreSQL again read-only"},
		{"empty data dir while holding the lease releases the key",
			snap(leading, func(s *Snapshot) { s.PG = PGState{DataDirEmpty: true} }),
			Action{Kind: ActRelease}, "data directory is empty; releasing"},
		{"empty data dir under a leader key naming me from an earlier session waits",
			snap(keyNamesMe, func(s *Snapshot) { s.PG = PGState{DataDirEmpty: true} }),
			Action{Kind: ActWait}, "waiting for the key to expire"},
		{"unlocked: the member the failover key names races",
			snap(unlocked, func(s *Snapshot) {
				s.View.Failover = dcs.Failover{Leader: "pg1", Member: "pg2"}
				s.Peers = []PeerStatus{peer("pg3", 0x9000000)} // even behind a peer
			}),
			Action{Kind: ActRace}, "designated candidate (failover key names me, requested by pg1)"},
		{"unlocked: another member is named and can still take over",
			snap(unlocked, func(s *Snapshot) {
				s.View.Failover = dcs.Failover{Member: "pg3"}
				s.LeaderlessSince = t0.Add(-19 * time.Second) // < 2·ttl
			}),
			Action{Kind: ActWait}, "only it may take the leader key"},
		{"unlocked: the named member has had 2·ttl; the others elect",
			snap(unlocked, func(s *Snapshot) {
				s.View.Failover = dcs.Failover{Member: "pg3"}
				s.LeaderlessSince = t0.Add(-20 * time.Second)
			}),
			Action{Kind: ActRace}, "most advanced"},
		{"unlocked: the named member has no member key; the others elect",
			snap(unlocked, func(s *Snapshot) {
				s.View.Failover = dcs.Failover{Member: "pg9"}
			}),
			Action{Kind: ActRace}, "most advanced"},
		{"designated candidate of a switchover waits to replay past the final LSN",
			snap(unlocked, designated, func(s *Snapshot) { s.Switchover = &switchover.Record{To: "pg2", FinalLSN: 0x5000000} }),
			Action{Kind: ActWait}, "waiting to catch up with the old leader's final LSN 0/5000000"},
		{"designated candidate of a switchover races once past the final LSN",
			snap(unlocked, designated, func(s *Snapshot) { s.Switchover = &switchover.Record{To: "pg2", FinalLSN: 0x4FFFFFF} }),
			Action{Kind: ActRace}, "designated candidate"},
		{"designated candidate tagged nofailover does not race",
			snap(unlocked, designated, func(s *Snapshot) { s.Tags = config.Tags{"nofailover": true} }),
			Action{Kind: ActWait}, "tagged nofailover"},
		{"designated candidate that is not a synchronous standby does not race",
			snap(unlocked, designated, func(s *Snapshot) {
				s.Config.SynchronousMode = config.SyncOn
				standby := "pg3"
				s.View.Sync = dcs.Sync{Leader: "pg1", SyncStandby: &standby}
			}),
			Action{Kind: ActWait}, "not a synchronous standby"},
		{"designated candidate whose required watchdog is unusable does not race",
			snap(unlocked, designated, func(s *Snapshot) { s.WatchdogUsable = false }),
			Action{Kind: ActWait}, "watchdog is unusable"},
	})
}

// TestElection covers the candidate rules and the tie-break (DESIGN §4).
func TestElection(t *testing.T) {
	tests := []struct {
		name     string
		mut      func(*Snapshot)
		wantRace bool
		want     string // substring of the reasons (not racing) or the plan reason
	}{
		{"alone and eligible races", func(s *Snapshot) {}, true, "racing"},
		{"equal LSN, smaller name wins the tie", func(s *Snapshot) {
			s.Peers = []PeerStatus{peer("pg3", 0x5000000)}
		}, true, "racing"},
		{"equal LSN, larger name stands down", func(s *Snapshot) {
			s.Peers = []PeerStatus{peer("pg1", 0x5000000)}
		}, false, "pg1 is equally advanced (0/5000000) and wins the tie-break by name"},
		{"equal LSN, higher failover_priority wins over name", func(s *Snapshot) {
			s.Tags = config.Tags{"failover_priority": 2}
			s.Peers = []PeerStatus{peer("pg1", 0x5000000)}
		}, true, "racing"},
		{"equal LSN, peer with higher failover_priority wins", func(s *Snapshot) {
			p := peer("pg3", 0x5000000)
			p.Priority = 1
			s.Peers = []PeerStatus{p}
		}, false, "higher failover_priority"},
		{"unreachable peer is skipped", func(s *Snapshot) {
			s.Peers = []PeerStatus{{Name: "pg1", Err: "connection refused"}}
		}, true, "pg1 unreachable"},
		{"more advanced but nofailover peer is skipped", func(s *Snapshot) {
			p := peer("pg3", 0x9000000)
			p.NoFailover = true
			s.Peers = []PeerStatus{p}
		}, true, "racing"},
		{"more advanced peer with a failed watchdog is skipped", func(s *Snapshot) {
			p := peer("pg3", 0x9000000)
			p.WatchdogFailed = true
			s.Peers = []PeerStatus{p}
		}, true, "racing"},
		{"a peer still running as primary blocks the race", func(s *Snapshot) {
			p := peer("pg1", 0x1000000)
			p.InRecovery = false
			s.Peers = []PeerStatus{p}
		}, false, "pg1 is running as a primary"},
		{"nofailover never races", func(s *Snapshot) {
			s.Tags = config.Tags{"nofailover": "true"}
		}, false, "tag nofailover"},
		{"lag beyond maximum_lag_on_failover never races", func(s *Snapshot) {
			s.View.Status.Optime = 0x5000000 + 2<<20
		}, false, "lag 2.0 MB > maximum_lag_on_failover 1.0 MB"},
		{"lag within maximum_lag_on_failover races", func(s *Snapshot) {
			s.View.Status.Optime = 0x5000000 + 1<<20
		}, true, "racing"},
		{"timeline behind the cluster never races", func(s *Snapshot) {
			s.View.History = []dcs.HistoryEntry{{Timeline: 1, SwitchLSN: 0x4000000}}
		}, false, "timeline 1 is behind the cluster timeline 2"},
		{"stale view never races", func(s *Snapshot) { s.ViewFresh = false }, false, "stale"},
		{"unusable required watchdog never races", func(s *Snapshot) { s.WatchdogUsable = false }, false, "watchdog required but unusable"},
		{"receive LSN ahead of replay counts", func(s *Snapshot) {
			s.PG.Status.ReceiveLSN = 0x7000000
			s.Peers = []PeerStatus{peer("pg1", 0x6000000)}
		}, true, "0/7000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snap(unlocked, tt.mut)
			got := decide(s)
			if (got.Action.Kind == ActRace) != tt.wantRace {
				t.Fatalf("race = %v, want %v: %s", got.Action.Kind == ActRace, tt.wantRace, got.Reason)
			}
			if !strings.Contains(got.Reason, tt.want) {
				t.Errorf("reason %q does not contain %q", got.Reason, tt.want)
			}
			if got.Election == nil {
				t.Fatal("an election plan must carry its Election record")
			}
		})
	}
}

// TestOnlyOneRacerAmongEqualPeers: with every member seeing the same
// positions, exactly one of them races.
func TestOnlyOneRacerAmongEqualPeers(t *testing.T) {
	names := []string{"pg1", "pg2", "pg3"}
	racers := 0
	for _, me := range names {
		s := snap(unlocked, func(s *Snapshot) {
			s.Name = me
			for _, n := range names {
				if n != me {
					s.Peers = append(s.Peers, peer(n, 0x5000000))
				}
			}
		})
		if decide(s).Action.Kind == ActRace {
			racers++
		}
	}
	if racers != 1 {
		t.Errorf("%d members race, want exactly 1", racers)
	}
}

// kindCase is a decide table row checked by action kind and reason.
type kindCase struct {
	name string
	snap Snapshot
	want ActionKind
	why  string // substring of the reason
}

func checkKinds(t *testing.T, tests []kindCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.snap)
			if got.Action.Kind != tt.want || !strings.Contains(got.Reason, tt.why) {
				t.Errorf("got %s %q, want %s containing %q", got.Action.Kind, got.Reason, tt.want, tt.why)
			}
		})
	}
}

func TestDecidePaused(t *testing.T) {
	paused := func(s *Snapshot) { s.Config.Pause = true }
	checkKinds(t, []kindCase{
		{"crashed primary is not restarted", snap(paused, crashedLeader(time.Second)), ActRelease, "releasing"},
		{"stopped replica is not started", snap(paused, func(s *Snapshot) { s.PG = PGState{} }), ActWait, "not starting it"},
		{"replicas never race", snap(paused, unlocked), ActWait, "no automatic action"},
		{"named candidate races once the former primary's agent reports it down", snap(paused, unlocked, designated, func(s *Snapshot) {
			s.PreviousLeader = "pg1"
			s.View.Members["pg1"] = dcs.Member{State: "stopped"}
		}), ActRace, "designated"},
		// #15 item 13: nothing fenced a paused former primary.
		{"named candidate waits while nobody confirmed the former primary stopped", snap(paused, unlocked, designated, func(s *Snapshot) {
			s.PreviousLeader = "pg1"
			delete(s.View.Members, "pg1") // its agent was stopped; the member key expired
		}), ActWait, "pg1 may still accept writes"},
		{"named candidate waits when the former primary's agent reports it running", snap(paused, unlocked, designated, func(s *Snapshot) {
			s.PreviousLeader = "pg1"
			s.View.Members["pg1"] = dcs.Member{State: "running"}
		}), ActWait, "may still accept writes"},
		{"named candidate waits when it cannot tell who was primary", snap(paused, unlocked, designated), ActWait, "cannot tell which member was the primary"},
		{"named candidate races when fence.command will run first", snap(paused, unlocked, designated, func(s *Snapshot) {
			s.PreviousLeader, s.StonithConfigured = "pg1", true
			delete(s.View.Members, "pg1")
		}), ActRace, "designated"},
		{"named candidate races when the operator vouches the former primary is down", snap(paused, unlocked, func(s *Snapshot) {
			s.View.Failover = dcs.Failover{Member: "pg2", AssumeOldPrimaryDown: true}
			s.PreviousLeader = "pg1"
			delete(s.View.Members, "pg1")
		}), ActRace, "designated"},
		{"named candidate never races over a member running as a primary", snap(paused, unlocked, func(s *Snapshot) {
			s.View.Failover = dcs.Failover{Member: "pg2", AssumeOldPrimaryDown: true}
			s.Peers = []PeerStatus{{Name: "pg1", Reachable: true, State: "running"}}
		}), ActWait, "pg1 runs as a primary"},
		{"running primary takes the free key without promoting", snap(paused, unlocked, func(s *Snapshot) { s.PG = primary(0x5000000) }), ActAcquire, "taking the leader key"},
		{"primary under another leader is left alone", snap(paused, func(s *Snapshot) { s.PG = primary(0x5000000) }), ActWait, "parallel primaries"},
		{"deadline still fences when paused", snap(paused, func(s *Snapshot) {
			s.PG = primary(0x5000000)
			s.Lease = LeaseState{Leading: true, Deadline: t0.Add(-time.Second)}
		}), ActFence, "deadline"},
		{"replica keeps following", snap(paused), ActFollow, "following"},
		{"leading primary leads", snap(paused, leading, func(s *Snapshot) { s.PG = primary(0x5000000) }), ActLead, "paused: leading"},
		{"leading replica promotes on an explicit failover to it", snap(paused, leading, func(s *Snapshot) {
			s.View.Failover = dcs.Failover{Member: "pg2"}
		}), ActPromote, "explicit failover to me"},
		{"the leader key still on my lease is released", snap(paused, func(s *Snapshot) {
			s.View.Leader = &dcs.Leader{Name: "pg2", Lease: 77}
			s.Lease = LeaseState{ID: 77}
		}), ActRelease, "still on my lease"},
	})
}

// TestUnsafeBuildKeepsAPrimary: the chaos suite's broken build
// (skipSelfFencing) neither fences past the deadline nor demotes a primary
// without the lease; the suite must catch the split brain that follows.
func TestUnsafeBuildKeepsAPrimary(t *testing.T) {
	skipSelfFencing = true
	t.Cleanup(func() { skipSelfFencing = false })
	checkKinds(t, []kindCase{
		{"past its deadline: leads on", snap(leading, func(s *Snapshot) {
			s.PG = primary(0x5000000)
			s.Lease.Deadline = t0.Add(-time.Second)
		}), ActLead, "leading"},
		{"a failed fence is not retried", snap(leading, func(s *Snapshot) {
			s.PG = primary(0x5000000)
			s.Lease.Unfenced = true
		}), ActLead, "leading"},
		{"without the lease: not demoted", snap(func(s *Snapshot) { s.PG = primary(0x5000000) }), ActWait, "UNSAFE build"},
	})
}
