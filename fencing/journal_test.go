package fencing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJournalDeviceRecordsWhatADeviceSees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wd.journal")
	dev, err := OpenDevice(JournalPrefix + path)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetTimeout(7 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _ := dev.Timeout(); got != 7*time.Second {
		t.Errorf("Timeout() = %s, want 7s", got)
	}
	if err := dev.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		_, ev, _ := strings.Cut(line, " ")
		events = append(events, ev)
	}
	if got := strings.Join(events, ","); got != "open,timeout 7,ping,close" {
		t.Errorf("journal = %q", got)
	}
}

// TestReadJournalSessions reads back what a device would see, session by
// session: the deadline is the last ping plus the timeout while armed.
func TestReadJournalSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wd.journal")
	for _, run := range []struct {
		pings int
		close bool
	}{{2, true}, {3, false}} {
		dev, err := OpenJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.SetTimeout(8 * time.Second); err != nil {
			t.Fatal(err)
		}
		for range run.pings {
			if err := dev.Ping(); err != nil {
				t.Fatal(err)
			}
		}
		if run.close {
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A line still being written is not part of the journal yet.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("1234 pi"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sessions, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 {
		t.Fatalf("%d sessions, want 2: %+v", len(sessions), sessions)
	}
	first, last := sessions[0], sessions[1]
	if first.Armed() || len(first.Pings) != 2 || first.Timeout != 8*time.Second {
		t.Errorf("first session: armed %v, %d pings, timeout %s; want closed, 2, 8s", first.Armed(), len(first.Pings), first.Timeout)
	}
	if !last.Armed() || len(last.Pings) != 3 || !last.Deadline().Equal(last.LastPing().Add(8*time.Second)) {
		t.Errorf("last session: armed %v, %d pings, deadline %s (last ping %s); want armed, 3, last ping + 8s",
			last.Armed(), len(last.Pings), last.Deadline(), last.LastPing())
	}
	for _, bad := range []string{"x open\n", "1 ping\n", "1 open\n2 timeout x\n", "1 open\n2 reboot\n"} {
		p := filepath.Join(t.TempDir(), "bad.journal")
		if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadJournal(p); err == nil {
			t.Errorf("ReadJournal(%q) succeeded", bad)
		}
	}
}
