package routerproc

import (
	"strings"
	"testing"
)

func TestFindMissingNamesThePackage(t *testing.T) {
	_, err := Find("regent-no-such-router")
	if err == nil {
		t.Fatal("Find of a missing binary: no error")
	}
	if !strings.Contains(err.Error(), "apt-get install -y regent-no-such-router") {
		t.Errorf("error %q does not name the package to install", err)
	}
}

func TestFindOnPath(t *testing.T) {
	if _, err := Find("sh"); err != nil {
		t.Errorf("Find(sh): %v", err)
	}
}

// The include file opens a [databases] section: anything after it would
// land in that section, so it must be the ini's last line.
func TestPgBouncerINIIncludesLast(t *testing.T) {
	p := PgBouncer{Port: 6432, Dir: "/d", AdminUser: "postgres", IncludeFile: "/d/regent-databases.ini"}
	ini := strings.TrimSpace(p.INI())
	lines := strings.Split(ini, "\n")
	if last := lines[len(lines)-1]; last != "%include /d/regent-databases.ini" {
		t.Errorf("last line %q, want the %%include", last)
	}
	for _, want := range []string{"listen_addr = 127.0.0.1", "listen_port = 6432", "admin_users = postgres", "auth_file = /d/userlist.txt", "pool_mode = transaction"} {
		if !strings.Contains(ini, want) {
			t.Errorf("ini lacks %q:\n%s", want, ini)
		}
	}
	if got, want := p.UserList(), "\"postgres\" \"\"\n"; got != want {
		t.Errorf("UserList = %q, want %q", got, want)
	}
	if got := p.AdminConnString(); !strings.Contains(got, "port=6432") || !strings.Contains(got, "dbname=pgbouncer") {
		t.Errorf("AdminConnString = %q", got)
	}
}

// A PgBouncer in a network namespace listens on, and is administered at,
// that namespace's address.
func TestPgBouncerListenAddr(t *testing.T) {
	p := PgBouncer{ListenAddr: "10.201.7.30", Port: 16432, Dir: "/d", AdminUser: "postgres", IncludeFile: "/d/i.ini"}
	if ini := p.INI(); !strings.Contains(ini, "listen_addr = 10.201.7.30\n") {
		t.Errorf("ini lacks the listen address:\n%s", ini)
	}
	if got := p.AdminConnString(); !strings.HasPrefix(got, "host=10.201.7.30 port=16432 ") {
		t.Errorf("AdminConnString = %q", got)
	}
}
