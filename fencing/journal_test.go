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
