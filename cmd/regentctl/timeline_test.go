package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/regent-ha/regent/switchover"
)

var tStart = time.Date(2026, 11, 22, 3, 5, 12, 0, time.UTC)

// fixedClock is a settable clock.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// runEvents is a switchover's events up to and including stage upTo's
// start; every stage before it completed in (i+1)·10 ms.
func runEvents(upTo int) []stageEvent {
	var evs []stageEvent
	for i, s := range switchover.StageNames()[:upTo+1] {
		at := tStart.Add(time.Duration(i) * time.Second)
		evs = append(evs, stageEvent{Seq: int64(len(evs) + 1), Stage: s, Kind: "started", At: at})
		if i < upTo {
			evs = append(evs, stageEvent{Seq: int64(len(evs) + 1), Stage: s, Kind: "completed",
				At: at.Add(time.Duration(i+1) * 10 * time.Millisecond), DurationMs: int64(i+1) * 10, Message: "ok " + s})
		}
	}
	return evs
}

// timelineAt is an 80-column timeline (a terminal's if tty) on a fixed
// clock at tStart, that has been through runEvents(upTo).
func timelineAt(tty bool, upTo int) (*timeline, *bytes.Buffer, *fixedClock) {
	var out bytes.Buffer
	clk := &fixedClock{t: tStart}
	tl := newTimeline(&out, tty, 80, clk.now, switchover.StageNames())
	for _, e := range runEvents(upTo) {
		tl.event(e)
	}
	return tl, &out, clk
}

func TestTimelinePlain(t *testing.T) {
	tl, out, _ := timelineAt(false, 2)
	tl.event(stageEvent{Seq: 6, Stage: string(switchover.StageCatchUp), Kind: "warning", Message: "pg3 lags 20 MB"})
	tl.note("event stream interrupted (EOF); reconnecting in 250ms")
	tl.event(stageEvent{Seq: 7, Stage: string(switchover.StageCatchUp), Kind: "failed", DurationMs: 30000, Message: "pg2 did not catch up"})
	tl.end(endEvent{State: "failed", Failure: &failure{Reason: "pg2 did not catch up within 30s", Hint: "pg1 is primary again; check replication"}})

	want := []string{
		"PRE_FLIGHT_CHECKS             running",
		"PRE_FLIGHT_CHECKS             done        10ms  ok PRE_FLIGHT_CHECKS",
		"QUIESCE_WRITES                running",
		"QUIESCE_WRITES                done        20ms  ok QUIESCE_WRITES",
		"WAIT_FOR_REPLICATION_CATCHUP  running",
		"warning: WAIT_FOR_REPLICATION_CATCHUP: pg3 lags 20 MB",
		"event stream interrupted (EOF); reconnecting in 250ms",
		"WAIT_FOR_REPLICATION_CATCHUP  failed     30.0s  pg2 did not catch up",
		"failure: pg2 did not catch up within 30s",
		"hint: pg1 is primary again; check replication",
	}
	if d := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); d != "" {
		t.Errorf("plain output (-want +got):\n%s", d)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("plain output contains escape sequences")
	}
}

// screen interprets the few sequences the timeline writes, as a terminal
// would, and returns the visible lines.
func screen(t *testing.T, s string) []string {
	t.Helper()
	var lines []string
	row := 0
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "\x1b["):
			i := strings.IndexAny(s[2:], "AJK")
			if i < 0 {
				t.Fatalf("unterminated escape in %q", s)
			}
			arg, op := s[2:2+i], s[2+i]
			s = s[3+i:]
			switch op {
			case 'A':
				n, _ := strconv.Atoi(arg)
				row = max(row-n, 0)
			case 'K':
				if row < len(lines) {
					lines[row] = ""
				}
			case 'J':
				lines = lines[:min(row, len(lines))]
			}
		case s[0] == '\r':
			s = s[1:]
		case s[0] == '\n':
			row++
			s = s[1:]
		default:
			end := strings.IndexAny(s, "\x1b\r\n")
			if end < 0 {
				end = len(s)
			}
			for len(lines) <= row {
				lines = append(lines, "")
			}
			lines[row] += s[:end]
			s = s[end:]
		}
	}
	return lines
}

func TestTimelineTerminal(t *testing.T) {
	tl, out, clk := timelineAt(true, 1)
	clk.t = tStart.Add(2500 * time.Millisecond)
	tl.tick()
	got := screen(t, out.String())
	want := []string{
		"✓ PRE_FLIGHT_CHECKS             done        10ms  ok PRE_FLIGHT_CHECKS",
		"⠙ QUIESCE_WRITES                running     1.5s",
		"· WAIT_FOR_REPLICATION_CATCHUP  pending",
		"· PROMOTE_STANDBY               pending",
		"· REPOINT_CLIENT_TRAFFIC        pending",
		"· POST_SWITCHOVER_VALIDATION    pending",
		"· CLEANUP                       pending",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("screen (-want +got):\n%s", d)
	}
	if !strings.Contains(out.String(), "\x1b[7A") {
		t.Error("no cursor-up redraw")
	}

	// The rest of the run, a warning and a reconnect notice: still one
	// line per stage, redrawn in place.
	tl.note("event stream interrupted (EOF); reconnecting in 250ms")
	for _, e := range runEvents(6)[len(runEvents(1)):] {
		tl.event(e)
	}
	tl.event(stageEvent{Seq: 99, Stage: string(switchover.StageValidation), Kind: "warning", Message: "pg3 not streaming yet"})
	tl.event(stageEvent{Seq: 100, Stage: string(switchover.StageCleanup), Kind: "completed", DurationMs: 5})
	tl.end(endEvent{State: "completed"})
	got = screen(t, out.String())
	if len(got) != 8 {
		t.Fatalf("screen has %d lines, want 7 stages and 1 warning:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, s := range switchover.StageNames() {
		if !strings.HasPrefix(got[i], "✓ "+s+" ") || !strings.Contains(got[i], " done ") {
			t.Errorf("line %d = %q, want %s done", i, got[i], s)
		}
	}
	if got[7] != "warning: POST_SWITCHOVER_VALIDATION: pg3 not streaming yet" {
		t.Errorf("warning line = %q", got[7])
	}
}

func TestTimelineTerminalCutsLongLines(t *testing.T) {
	var out bytes.Buffer
	tl := newTimeline(&out, true, 40, time.Now, switchover.StageNames())
	tl.event(stageEvent{Seq: 1, Stage: string(switchover.StagePreFlight), Kind: "info", Message: strings.Repeat("é", 100)})
	for _, l := range screen(t, out.String()) {
		if n := len([]rune(l)); n > 39 {
			t.Errorf("line of %d runes on a 40-column terminal: %q", n, l)
		}
	}
}

func TestTimelineAbortMarksRunningStage(t *testing.T) {
	tl, out, clk := timelineAt(false, 1)
	clk.t = tStart.Add(3 * time.Second)
	tl.end(endEvent{State: "aborted"})
	if !strings.HasSuffix(out.String(), "QUIESCE_WRITES                aborted     2.0s\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0ms", 0: "0ms", 12 * time.Millisecond: "12ms", 1234 * time.Millisecond: "1.2s",
		59*time.Second + 940*time.Millisecond: "59.9s", 65 * time.Second: "1m05s", 2*time.Hour + time.Second: "120m01s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
