package fencing

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// These tests never open a real watchdog: only missing paths and plain files.

func TestOpenLinuxMissing(t *testing.T) {
	_, err := OpenLinux(filepath.Join(t.TempDir(), "watchdog"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenLinux(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestOpenLinuxNotAWatchdog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "not-a-watchdog")
	if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenLinux(p)
	if err == nil {
		_ = d.Close()
		t.Fatal("OpenLinux(plain file) succeeded")
	}
	got, rerr := os.ReadFile(p)
	if rerr != nil || string(got) != "data" {
		t.Errorf("file content after OpenLinux = %q, %v; want untouched (no magic 'V' written)", got, rerr)
	}
}
