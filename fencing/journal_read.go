package fencing

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// JournalSession is one arming of a journal device, from "open" to
// "close", as read back by a test in another process.
type JournalSession struct {
	Open    time.Time
	Timeout time.Duration // the last "timeout N" line; 0 if none
	Pings   []time.Time
	Close   time.Time // zero while still armed
}

// Armed reports whether the session was never closed: a real device would
// still be counting down.
func (s JournalSession) Armed() bool { return s.Close.IsZero() }

// LastPing is the last keepalive (the arming ping included); zero if none.
func (s JournalSession) LastPing() time.Time {
	if len(s.Pings) == 0 {
		return time.Time{}
	}
	return s.Pings[len(s.Pings)-1]
}

// Deadline is when a real device would reset the host: last ping plus
// the timeout (the open, when it was never pinged).
func (s JournalSession) Deadline() time.Time {
	from := s.LastPing()
	if from.IsZero() {
		from = s.Open
	}
	return from.Add(s.Timeout)
}

// ReadJournal parses a journal device file ("<unixnano> open|timeout N|
// ping|close" lines) into sessions, oldest first. A last line still being
// written (no newline yet) is ignored.
func ReadJournal(path string) ([]JournalSession, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read watchdog journal: %w", err)
	}
	text := string(data)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i+1]
	} else {
		text = ""
	}
	var sessions []JournalSession
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		if err := parseJournalLine(&sessions, sc.Text()); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	return sessions, nil
}

func parseJournalLine(sessions *[]JournalSession, text string) error {
	ts, event, _ := strings.Cut(text, " ")
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad time %q", ts)
	}
	at := time.Unix(0, ns)
	if event == "open" {
		*sessions = append(*sessions, JournalSession{Open: at})
		return nil
	}
	if len(*sessions) == 0 || !(*sessions)[len(*sessions)-1].Armed() {
		return fmt.Errorf("%q outside an open session", event)
	}
	s := &(*sessions)[len(*sessions)-1]
	switch kind, arg, _ := strings.Cut(event, " "); kind {
	case "timeout":
		secs, err := strconv.Atoi(arg)
		if err != nil {
			return fmt.Errorf("bad timeout %q", arg)
		}
		s.Timeout = time.Duration(secs) * time.Second
	case "ping":
		s.Pings = append(s.Pings, at)
	case "close":
		s.Close = at
	default:
		return fmt.Errorf("unknown event %q", event)
	}
	return nil
}
