package chaos

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
)

// TestChaosStandbyCatchesAWritableMember is the standby checkers' self-test
// against real processes (with -chaos.standby only, so make chaos
// STANDBY=1 runs it and make test does not): a standby member whose agent
// is killed and whose PostgreSQL is then promoted behind its back
// (pg_promote) is writable, and the probes must show it, failing the
// standby read-only checker.
func TestChaosStandbyCatchesAWritableMember(t *testing.T) {
	if !*flagDR {
		t.Skip("the standby self-test runs with -chaos.standby (make chaos STANDBY=1)")
	}
	run := NewRun(t, Config{Seed: 1, Standby: true, Actions: []ActionKind{}, Watchdog: WatchdogOff,
		Cluster: Options{KeepLogs: *flagKeep}})
	defer run.wl.Stop()
	ctx := t.Context()
	leader, err := run.dr.sc.Leader(ctx)
	if err != nil {
		t.Fatalf("standby leader: %v", err)
	}
	member := run.dr.sc.Others(leader.Name)[0]
	if err := member.KillAgent(); err != nil {
		t.Fatal(err)
	}
	if err := execSQL(ctx, member, "SELECT pg_promote(true, 30)"); err != nil {
		t.Fatalf("promote %s: %v", member.Name, err)
	}
	var v Verdict
	err = testcluster.Eventually(ctx, 30*time.Second, func(context.Context) error {
		if v = CheckStandbyReadOnly(run.dr.sc.Probes()); v.OK {
			return errors.New("the probes have not seen it yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("standby read-only checker after %s was promoted: %v (%s)", member.Name, err, v)
	}
	t.Logf("caught, as it must be: %s\n%s", v, v.Details)
}
