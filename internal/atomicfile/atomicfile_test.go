package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: each write replaces the content and sets the mode exactly
// (not through the umask), the owner function sees the temporary file
// before the rename, and no temporary file is left behind.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.ini")
	for _, tc := range []struct {
		text string
		mode os.FileMode
	}{{"one\n", 0o644}, {"two\n", 0o600}} {
		var chowned []string
		chown := func(p string) error { chowned = append(chowned, p); return nil }
		if err := Write(path, []byte(tc.text), tc.mode, chown); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != tc.text {
			t.Fatalf("read %q (%v), want %q", b, err, tc.text)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tc.mode {
			t.Fatalf("mode %v (%v), want %v", fi.Mode().Perm(), err, tc.mode)
		}
		if len(chowned) != 1 || filepath.Dir(chowned[0]) != dir || chowned[0] == path {
			t.Fatalf("chown called on %v, want one temporary file in %s", chowned, dir)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// TestWriteFailureKeepsTheOldFile: a failed write (the owner cannot be
// set) reports the error, keeps the old content and leaves nothing behind;
// a missing directory is an error that names the path.
func TestWriteFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "postgresql.conf")
	if err := Write(path, []byte("old\n"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("chown refused")
	err := Write(path, []byte("new\n"), 0o600, func(string) error { return refused })
	if !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the chown error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Fatalf("content %q after a failed write, want the old one", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}

	missing := filepath.Join(dir, "absent", "x.conf")
	if err := Write(missing, nil, 0o600, nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
}

// TestTemp: a temporary file in the system's directory (dir "") holds the
// data with the mode asked for.
func TestTemp(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	name, err := Temp("", "regent-secret-*", []byte("s3cret"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(name) != os.Getenv("TMPDIR") {
		t.Fatalf("temporary file %s, want it in TMPDIR", name)
	}
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
