package postgres_test

import (
	"fmt"

	"github.com/regent-ha/regent/postgres"
)

func ExampleSlotName() {
	for _, member := range []string{"pg-1", "db.eu.2", "Node@A"} {
		fmt.Println(postgres.SlotName(member))
	}
	// Output:
	// pg_1
	// db_eu_2
	// nodeu0064a
}

// The old primary stopped cleanly on timeline 1 after writing past the
// point where the new primary's timeline 2 forked: it must be rewound.
func ExampleNeedsRewind() {
	history, _ := postgres.ParseTimelineHistory("1\t0/3016430\tno recovery target specified\n")
	old := postgres.ControlData{State: postgres.StateShutDown, Timeline: 1, CheckpointLSN: 0x30181C8}
	tl, end, clean := old.WALEnd()
	fmt.Println(clean, postgres.NeedsRewind(tl, end, 2, history))
	// Output: true true
}
