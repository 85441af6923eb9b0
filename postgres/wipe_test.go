package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWipeLocationProblem: `/`, a mount point, a home directory or one that
// holds a home are never emptied, also through a symlink; an ordinary
// directory is.
func TestWipeLocationProblem(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(rel string) string {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	home, homes, mounted, plain := mk("var/lib/postgresql"), mk("home"), mk("mnt/pgdata"), mk("srv/pg/15/main")
	mk("home/alice")
	underHome := mk("var/lib/postgresql/15/main")
	link := filepath.Join(base, "link-to-home")
	if err := os.Symlink(home, link); err != nil {
		t.Fatal(err)
	}
	files := hostFiles{passwd: filepath.Join(base, "passwd"), mountinfo: filepath.Join(base, "mountinfo")}
	passwd := "root:x:0:0:root:/root:/bin/bash\n" +
		"postgres:x:101:104:PostgreSQL administrator,,,:" + home + ":/bin/bash\n" +
		"alice:x:1000:1000::" + homes + "/alice/:/bin/bash\n" +
		"broken line\n" + "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	mountinfo := "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n" +
		"45 27 254:0 /srv/x " + strings.ReplaceAll(mounted, " ", `\040`) + " rw,relatime shared:1 - ext4 /dev/vda rw\n"
	if err := os.WriteFile(files.passwd, []byte(passwd), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.mountinfo, []byte(mountinfo), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, want string // want: a fragment of the reason, "" for none
	}{
		{"/", "root directory"},
		{"relative/data", "absolute"},
		{"/proc", "mount point"}, // another device than /
		{mounted, "mount point"}, // listed in mountinfo (a bind mount of the same device)
		{home, "is a home directory"},
		{link, "is a home directory"},
		{homes, "holds the home directory " + homes + "/alice"},
		{filepath.Join(base, "var"), "holds the home directory " + home},
		{plain, ""},
		{underHome, ""},
		{filepath.Join(base, "missing"), "cannot resolve"},
	} {
		got := wipeLocationProblem(tc.dir, files)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("wipeLocationProblem(%s) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}

func TestMountPoints(t *testing.T) {
	in := "22 27 0:21 / /proc rw,relatime - proc proc rw\n" +
		`90 27 0:50 / /mnt/my\040disk\134x rw - ext4 /dev/sdb rw` + "\n" + "short line\n"
	want := []string{"/proc", `/mnt/my disk\x`}
	if diff := cmp.Diff(want, mountPoints(strings.NewReader(in))); diff != "" {
		t.Errorf("mountPoints (-want +got):\n%s", diff)
	}
}

// TestCheckWipeRefusesSystemPlaces: the guard on places that must never be
// emptied refuses without deleting (CheckWipe only: a broken guard must
// not be able to do harm here).
func TestCheckWipeRefusesSystemPlaces(t *testing.T) {
	for _, dir := range []string{"/", "/proc", "/etc"} {
		i := unitInstance(t, func(c *Config) { c.DataDir = dir })
		if err := i.CheckWipe(t.Context(), AnySystem); !errors.Is(err, ErrWipeRefused) {
			t.Errorf("CheckWipe(%s) = %v, want ErrWipeRefused", dir, err)
		}
	}
}

// TestWipeDataDirWithoutPostgreSQL: an absent or empty data_dir is fine; a
// directory with files but no PG_VERSION is refused and kept whole.
func TestWipeDataDirWithoutPostgreSQL(t *testing.T) {
	ctx := t.Context()
	i := unitInstance(t, func(c *Config) { c.DataDir = filepath.Join(t.TempDir(), "data") })
	dir := i.cfg.DataDir
	if err := i.WipeDataDir(ctx, 42); err != nil {
		t.Errorf("WipeDataDir of an absent directory: %v", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := i.WipeDataDir(ctx, 42); err != nil {
		t.Errorf("WipeDataDir of an empty directory: %v", err)
	}
	keep := filepath.Join(dir, "photos", "2024.jpg")
	if err := os.MkdirAll(filepath.Dir(keep), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{AnySystem, 42} {
		err := i.WipeDataDir(ctx, id)
		if !errors.Is(err, ErrWipeRefused) || !strings.Contains(err.Error(), "no PG_VERSION") {
			t.Errorf("WipeDataDir(%d) of a non-PostgreSQL directory = %v, want a refusal naming PG_VERSION", id, err)
		}
		if data, err := os.ReadFile(keep); err != nil || string(data) != "precious" {
			t.Fatalf("the refused wipe touched %s: %q, %v", keep, data, err)
		}
	}
}

// TestWipeDataDirChecksTheSystemIdentifier: a real data directory is wiped
// only with its own system identifier (or AnySystem); another cluster's,
// or one whose pg_control cannot be read, is refused and kept whole.
func TestWipeDataDirChecksTheSystemIdentifier(t *testing.T) {
	inst := newTestInstance(t, "pg-w")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := inst.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	cd, err := inst.ControlData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := inst.Config().DataDir
	before := dirNames(t, dir)
	err = inst.WipeDataDir(ctx, cd.SystemID+1)
	if !errors.Is(err, ErrWipeRefused) || !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("WipeDataDir with another system identifier = %v, want a refusal naming another cluster", err)
	}
	if diff := cmp.Diff(before, dirNames(t, dir)); diff != "" {
		t.Fatalf("the refused wipe changed the data directory (-before +after):\n%s", diff)
	}
	if err := inst.CheckWipe(ctx, cd.SystemID); err != nil {
		t.Errorf("CheckWipe with its own system identifier: %v", err)
	}

	// pg_control unreadable: cannot tell whose it is.
	control := filepath.Join(dir, "global", "pg_control")
	if err := os.Rename(control, control+".away"); err != nil {
		t.Fatal(err)
	}
	if err := inst.WipeDataDir(ctx, cd.SystemID); !errors.Is(err, ErrWipeRefused) || !strings.Contains(err.Error(), "cannot read its system identifier") {
		t.Errorf("WipeDataDir without pg_control = %v, want a refusal", err)
	}
	if err := os.Rename(control+".away", control); err != nil {
		t.Fatal(err)
	}

	if err := inst.WipeDataDir(ctx, cd.SystemID); err != nil {
		t.Fatalf("WipeDataDir with its own system identifier: %v", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("WipeDataDir left %v", names)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("WipeDataDir removed the directory itself: %v", err)
	}
}

// dirNames lists every path under dir, relative to it.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
