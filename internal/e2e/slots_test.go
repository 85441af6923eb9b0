package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	"github.com/regent-ha/regent/postgres"
)

// slotPassBound is how long a member may take to apply its slot plan
// after a change: the slot pass runs every 5 s and at every change.
const slotPassBound = 30 * time.Second

// TestIgnoredSlotSurvivesSwitchovers (issue #20, must-show 5): a physical
// slot made by hand and listed in ignore_slots survives a switchover away
// and back (on the old primary while it is a replica, and when it leads
// again); one not listed is dropped with a WARN naming it and the
// ignore_slots entry that would keep it.
func TestIgnoredSlotSurvivesSwitchovers(t *testing.T) {
	c, first := startHealthy(t, testcluster.Options{Nodes: 2,
		DCS: map[string]any{"ignore_slots": []any{map[string]any{"name": "foreign_archiver", "type": "physical"}}}})
	first = waitHealthyForSwitchover(t, c)
	second := c.Others(first.Name)[0]
	logs := first.CaptureLog(t)

	mustExec(t, first, "SELECT pg_create_physical_replication_slot('foreign_archiver', true)")
	mustExec(t, first, "SELECT pg_create_physical_replication_slot('stray_archiver', true)")
	logs.Wait(t, slotPassBound, "a WARN naming stray_archiver and the entry that keeps it", func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "slot=stray_archiver") &&
			strings.Contains(l, `ignore_slots_entry="{\"name\": \"stray_archiver\", \"type\": \"physical\"}"`)
	})
	waitSlots(t, first, "stray_archiver dropped, foreign_archiver kept", func(have map[string]bool) bool {
		return !have["stray_archiver"] && have["foreign_archiver"]
	})

	// Away: first becomes a replica. Its slot pass drops the slot it kept
	// for second as a primary (a replica keeps no member slots); the
	// ignored one must still be there after that pass.
	mustSucceed(t, regentctl(t, c, switchoverBound, "switchover", "--to", second.Name, "-y"))
	waitStreamingFrom(t, first, second, switchoverBound)
	memberSlot := postgres.SlotName(second.Name)
	logs.Wait(t, slotPassBound, "the former primary dropping "+memberSlot+" as a replica", func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "slot="+memberSlot+" ")
	})
	waitSlots(t, first, "foreign_archiver kept on the replica", func(have map[string]bool) bool {
		return have["foreign_archiver"] && !have[memberSlot]
	})

	// And back: first leads again and keeps it.
	c.WaitHealthy(t, bootstrapTimeout)
	waitHealthyForSwitchover(t, c)
	mustSucceed(t, regentctl(t, c, switchoverBound, "switchover", "--to", first.Name, "-y"))
	waitStreamingFrom(t, second, first, switchoverBound)
	waitSlots(t, first, "the member slot back and foreign_archiver kept on the primary again", func(have map[string]bool) bool {
		return have["foreign_archiver"] && have[memberSlot] && !have["stray_archiver"]
	})
	if n := len(logs.Matching(func(l string) bool { return strings.Contains(l, "slot=foreign_archiver") })); n != 0 {
		t.Errorf("%d log lines about foreign_archiver, want none (it is ignored)", n)
	}
}

// switchoverBound bounds a regentctl switchover and the old primary
// streaming from the new one afterwards.
const switchoverBound = 90 * time.Second

// waitSlots polls n's pg_replication_slots until ok holds for the set of
// slot names.
func waitSlots(t *testing.T, n *testcluster.Node, what string, ok func(have map[string]bool) bool) {
	t.Helper()
	testcluster.Poll(t, slotPassBound, n.Name+": "+what, func(ctx context.Context) error {
		have, err := slotNames(ctx, n)
		if err != nil {
			return err
		}
		if !ok(have) {
			return fmt.Errorf("slots %v", have)
		}
		return nil
	})
}

func slotNames(ctx context.Context, n *testcluster.Node) (map[string]bool, error) {
	conn, err := n.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer closeQuietly(ctx, conn)
	rows, err := conn.Query(ctx, "SELECT slot_name::text FROM pg_replication_slots")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		have[s] = true
	}
	return have, rows.Err()
}
