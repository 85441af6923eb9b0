package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTimelineHistory(t *testing.T) {
	text := "1\t0/3000158\tno recovery target specified\n\n" +
		"# comment\n" +
		"2\t0/5000000\tbefore 2024-01-01 00:00:00+00\n" +
		"3\t1/A0\n"
	got, err := ParseTimelineHistory(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []TimelineSwitch{
		{Timeline: 1, SwitchLSN: 0x3000158, Reason: "no recovery target specified"},
		{Timeline: 2, SwitchLSN: 0x5000000, Reason: "before 2024-01-01 00:00:00+00"},
		{Timeline: 3, SwitchLSN: 0x1_000000A0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseTimelineHistory (-want +got):\n%s", diff)
	}
	if got, err := ParseTimelineHistory(""); err != nil || got != nil {
		t.Errorf("empty history = %v, %v", got, err)
	}
	for _, bad := range []string{"x\t0/1\n", "1\n", "1\tnope\n", "0\t0/1\n", "2\t0/1\n1\t0/2\n"} {
		if got, err := ParseTimelineHistory(bad); err == nil {
			t.Errorf("ParseTimelineHistory(%q) = %v, want an error", bad, got)
		}
	}
}

func TestNeedsRewind(t *testing.T) {
	// Upstream on timeline 3: 1 ended at 0/3000000, 2 at 0/5000000.
	hist := []TimelineSwitch{{Timeline: 1, SwitchLSN: 0x3000000}, {Timeline: 2, SwitchLSN: 0x5000000}}
	for _, tc := range []struct {
		name     string
		localTL  uint32
		localLSN LSN
		upTL     uint32
		history  []TimelineSwitch
		want     bool
	}{
		{"same timeline, local behind", 3, 0x4000000, 3, hist, false},
		{"same timeline, local ahead", 3, 0x9000000, 3, hist, false},
		{"ancestor, before its switch point", 2, 0x4FFFFFF, 3, hist, false},
		{"ancestor, exactly at its switch point", 2, 0x5000000, 3, hist, false},
		{"ancestor, past its switch point", 2, 0x5000001, 3, hist, true},
		{"older ancestor, before switch", 1, 0x2000000, 3, hist, false},
		{"older ancestor, past switch", 1, 0x3000100, 3, hist, true},
		{"unknown timeline (sibling)", 4, 0x1000000, 3, hist, true},
		{"local newer than upstream", 4, 0x1000000, 3, hist[:1], true},
		{"upstream on timeline 1 has no history", 2, 0x1000000, 1, nil, true},
		{"timeline 1 following timeline 2, before switch", 1, 0x2000000, 2, hist[:1], false},
	} {
		if got := NeedsRewind(tc.localTL, tc.localLSN, tc.upTL, tc.history); got != tc.want {
			t.Errorf("%s: NeedsRewind(%d, %v, %d) = %v, want %v", tc.name, tc.localTL, tc.localLSN, tc.upTL, got, tc.want)
		}
	}
}

func TestWALEnd(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cd        ControlData
		wantTL    uint32
		wantEnd   LSN
		wantClean bool
	}{
		{"primary shut down", ControlData{State: StateShutDown, Timeline: 1, CheckpointLSN: 0x5000028}, 1, 0x5000029, true},
		{"standby shut down", ControlData{State: StateShutDownInRecovery, Timeline: 1, CheckpointLSN: 0x4000000,
			MinRecoveryEndLSN: 0x50000A0, MinRecoveryEndTimeline: 2}, 2, 0x50000A0, true},
		{"crashed primary", ControlData{State: StateInProduction, Timeline: 2, CheckpointLSN: 0x6000000}, 2, 0x6000001, false},
		{"crashed standby", ControlData{State: StateInArchiveRecovery, Timeline: 1, CheckpointLSN: 0x6000000,
			MinRecoveryEndLSN: 0x7000000, MinRecoveryEndTimeline: 1}, 1, 0x6000001, false},
	} {
		tl, end, clean := tc.cd.WALEnd()
		if tl != tc.wantTL || end != tc.wantEnd || clean != tc.wantClean {
			t.Errorf("%s: WALEnd = %d, %v, %v; want %d, %v, %v", tc.name, tl, end, clean, tc.wantTL, tc.wantEnd, tc.wantClean)
		}
	}
	// A primary whose shutdown checkpoint starts exactly at the switch
	// point has WAL the new timeline lacks; one whose checkpoint the
	// replica replayed (switch point = end of that record) has not.
	hist := []TimelineSwitch{{Timeline: 1, SwitchLSN: 0x5000028}}
	_, end, _ := ControlData{State: StateShutDown, Timeline: 1, CheckpointLSN: 0x5000028}.WALEnd()
	if !NeedsRewind(1, end, 2, hist) {
		t.Errorf("checkpoint at the switch point: want rewind")
	}
	_, end, _ = ControlData{State: StateShutDown, Timeline: 1, CheckpointLSN: 0x5000000}.WALEnd()
	if NeedsRewind(1, end, 2, hist) {
		t.Errorf("checkpoint replayed by the new primary: want no rewind")
	}
}

const controlDataSample = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7710818212744130699
Database cluster state:               shut down in recovery
pg_control last modified:             Sun Nov 22 02:32:49 2026
Latest checkpoint location:           0/1500718
Latest checkpoint's REDO location:    0/15006E0
Latest checkpoint's REDO WAL file:    000000010000000000000001
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's oldestCommitTsXid:0
Time of latest checkpoint:            Sun Nov 22 02:32:49 2026
Minimum recovery ending location:     0/30001A0
Min recovery ending loc's timeline:   2
Backup start location:                0/0
`

func TestParseControlData(t *testing.T) {
	got, err := ParseControlData(controlDataSample)
	if err != nil {
		t.Fatal(err)
	}
	want := ControlData{SystemID: 7710818212744130699, State: StateShutDownInRecovery, Timeline: 1,
		CheckpointLSN: 0x1500718, RedoLSN: 0x15006E0, MinRecoveryEndLSN: 0x30001A0, MinRecoveryEndTimeline: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseControlData (-want +got):\n%s", diff)
	}
	if _, err := ParseControlData("Database cluster state: shut down\n"); err == nil {
		t.Errorf("ParseControlData accepted output without the checkpoint fields")
	}
}
