package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// stageEvent is one event of a switchover record, as the events stream
// sends it.
type stageEvent struct {
	Seq        int64     `json:"seq"`
	Stage      string    `json:"stage"`
	Kind       string    `json:"kind"` // started, completed, warning, failed, info
	At         time.Time `json:"at"`
	DurationMs int64     `json:"duration_ms"`
	Message    string    `json:"message"`
}

// endEvent is the stream's final event.
type endEvent struct {
	State   string   `json:"state"` // completed, failed, aborted
	Failure *failure `json:"failure"`
}

type failure struct {
	Reason string `json:"reason"`
	Hint   string `json:"hint"`
}

// Row states.
const (
	rowPending = "pending"
	rowRunning = "running"
	rowDone    = "done"
	rowFailed  = "failed"
	rowAborted = "aborted"
)

// spinner frames for a running stage on a terminal.
var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// timeline renders a switchover's stages: on a terminal, a block of one
// line per stage redrawn in place (cursor up) with a spinner on the
// running stage; otherwise one appended line per change, for CI logs.
// It is not safe for concurrent use: one goroutine feeds it.
type timeline struct {
	out   io.Writer
	tty   bool
	width int // terminal columns; lines are cut to fit so redraws stay aligned
	now   func() time.Time

	rows   []*stageRow
	notes  []string // warnings, in order (terminal: kept under the stages)
	status string   // the latest connection notice (terminal only)
	drawn  int      // lines drawn by the last redraw
	frame  int
}

type stageRow struct {
	name     string
	state    string
	started  time.Time
	duration time.Duration
	message  string
}

func newTimeline(out io.Writer, tty bool, width int, now func() time.Time, stages []string) *timeline {
	t := &timeline{out: out, tty: tty, width: width, now: now}
	for _, s := range stages {
		t.rows = append(t.rows, &stageRow{name: s, state: rowPending})
	}
	return t
}

// row returns the named stage's row, adding unknown stages at the end.
func (t *timeline) row(stage string) *stageRow {
	for _, r := range t.rows {
		if r.name == stage {
			return r
		}
	}
	r := &stageRow{name: stage, state: rowPending}
	t.rows = append(t.rows, r)
	return r
}

// event applies one stage event.
func (t *timeline) event(e stageEvent) {
	r := t.row(e.Stage)
	switch e.Kind {
	case "started":
		r.state, r.started, r.message = rowRunning, e.At, e.Message
		if r.started.IsZero() {
			r.started = t.now()
		}
	case "completed", "failed":
		r.state, r.message = rowDone, e.Message
		if e.Kind == "failed" {
			r.state = rowFailed
		}
		r.duration = time.Duration(e.DurationMs) * time.Millisecond
		if e.DurationMs == 0 && !r.started.IsZero() && !e.At.IsZero() {
			r.duration = e.At.Sub(r.started)
		}
	case "warning":
		t.notes = append(t.notes, "warning: "+e.Stage+": "+e.Message)
		if !t.tty {
			t.println(t.notes[len(t.notes)-1])
			return
		}
	default: // info and kinds added later: the message is the news
		r.message = e.Message
	}
	if t.tty {
		t.redraw()
		return
	}
	t.println(t.line(r))
}

// note shows a connection notice (reconnecting, …).
func (t *timeline) note(msg string) {
	if !t.tty {
		t.println(msg)
		return
	}
	t.status = msg
	t.redraw()
}

// tick advances the spinner and the running clock (terminal only).
func (t *timeline) tick() {
	if !t.tty {
		return
	}
	t.frame++
	t.redraw()
}

// end marks the switchover finished and prints the outcome: the failure
// reason and hint when it failed.
func (t *timeline) end(e endEvent) {
	t.status = ""
	for _, r := range t.rows {
		if r.state != rowRunning {
			continue
		}
		switch e.State {
		case "failed":
			r.state = rowFailed
		case "aborted":
			r.state = rowAborted
		default:
			continue
		}
		if !r.started.IsZero() {
			r.duration = t.now().Sub(r.started)
		}
		if !t.tty {
			t.println(t.line(r))
		}
	}
	if t.tty {
		t.redraw()
	}
	if e.Failure != nil && e.Failure.Reason != "" {
		t.println("failure: " + e.Failure.Reason)
		if e.Failure.Hint != "" {
			t.println("hint: " + e.Failure.Hint)
		}
	}
}

// line renders one stage.
func (t *timeline) line(r *stageRow) string {
	var d string
	switch {
	case r.state == rowRunning && t.tty && !r.started.IsZero():
		d = fmtDuration(t.now().Sub(r.started))
	case r.state != rowPending && r.state != rowRunning:
		d = fmtDuration(r.duration)
	}
	s := fmt.Sprintf("%-28s  %-7s  %7s", r.name, r.state, d)
	if t.tty {
		s = t.marker(r.state) + " " + s
	}
	if r.message != "" {
		s += "  " + r.message
	}
	return strings.TrimRight(s, " ")
}

func (t *timeline) marker(state string) string {
	switch state {
	case rowRunning:
		return spinner[t.frame%len(spinner)]
	case rowDone:
		return "✓"
	case rowFailed, rowAborted:
		return "✗"
	}
	return "·"
}

// redraw moves the cursor back over the last block and draws it again.
func (t *timeline) redraw() {
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn)
	}
	lines := make([]string, 0, len(t.rows)+len(t.notes)+1)
	for _, r := range t.rows {
		lines = append(lines, t.line(r))
	}
	lines = append(lines, t.notes...)
	if t.status != "" {
		lines = append(lines, t.status)
	}
	for _, l := range lines {
		b.WriteString("\r\x1b[2K" + cut(l, t.width-1) + "\n")
	}
	b.WriteString("\x1b[J") // clear what a longer previous block left below
	t.drawn = len(lines)
	_, _ = io.WriteString(t.out, b.String())
}

func (t *timeline) println(s string) { _, _ = fmt.Fprintln(t.out, s) }

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// fmtDuration is short and stable: 12ms, 1.2s, 1m05s.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
