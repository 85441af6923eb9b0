package postgres

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHBAWarnings(t *testing.T) {
	base := Config{
		Listen: "0.0.0.0:5432", ConnectAddress: "10.0.0.2:5432",
		Superuser: Credentials{Username: "postgres"}, Replication: Credentials{Username: "replicator"},
	}
	const (
		local = `Regent's superuser connection to its own PostgreSQL (user "postgres" from 127.0.0.1)`
		repl  = `the members' replication connections (user "replicator" from 10.0.0.2)`
		su    = `the members' superuser connections (pg_rewind, timeline checks) (user "postgres" from 10.0.0.2)`
	)
	for _, tc := range []struct {
		name   string
		hba    []string
		mutate func(*Config)
		want   []string // "[index] verb who" of each warning
	}{
		{name: "none configured"},
		{
			name: "Debian's peer and a trust line keep Regent working",
			hba: []string{"local all postgres peer", "local all all peer", "host all all 127.0.0.1/32 trust",
				"host all all ::1/128 md5", "# a comment", ""},
		},
		{
			name: "reject for everyone from anywhere",
			hba:  []string{"host all all 0.0.0.0/0 reject"},
			want: []string{"[0] would turn away " + local, "[0] would turn away " + su},
		},
		{
			name: "all does not match replication connections; the replication keyword does",
			hba:  []string{"host all all all reject", "host replication all 10.0.0.0/8 reject"},
			want: []string{"[0] would turn away " + local, "[1] would turn away " + repl, "[0] would turn away " + su},
		},
		{
			name: "the first matching line decides",
			hba:  []string{"host replication replicator 10.0.0.0/24 scram-sha-256", "host replication all 0.0.0.0/0 reject"},
		},
		{
			name: "a line for other addresses or users does not apply",
			hba: []string{"host all all 192.168.0.0/16 reject", "host all app 0.0.0.0/0 reject",
				"host replication all 10.0.1.0 255.255.255.0 reject", "host sales all 10.0.0.0/8 reject"},
		},
		{
			name: "netmask column",
			hba:  []string{"host replication all 10.0.0.0 255.0.0.0 reject"},
			want: []string{"[0] would turn away " + repl},
		},
		{
			name: "methods Regent's password cannot satisfy",
			hba:  []string{"host all postgres 127.0.0.1/32 ident", "host replication replicator 10.0.0.2/32 cert", "host postgres postgres 10.0.0.0/8 gss"},
			want: []string{"[0] would turn away " + local, "[1] would turn away " + repl, "[2] would turn away " + su},
		},
		{
			name: "hostssl applies to the members only with ssl on; Regent's own connection never uses SSL",
			hba:  []string{"hostssl all all 0.0.0.0/0 reject", "hostssl replication all 0.0.0.0/0 reject"},
		},
		{
			name:   "hostssl with ssl on",
			mutate: func(c *Config) { c.Parameters = map[string]any{"ssl": "on"} },
			hba:    []string{"hostssl all all 0.0.0.0/0 reject", "hostssl replication all 0.0.0.0/0 reject"},
			want:   []string{"[1] would turn away " + repl, "[0] would turn away " + su},
		},
		{
			name:   "hostnossl and ssl on",
			mutate: func(c *Config) { c.Parameters = map[string]any{"ssl": true} },
			hba:    []string{"hostnossl all all 0.0.0.0/0 reject"},
			want:   []string{"[0] would turn away " + local},
		},
		{
			name: "host names, groups and samenet are possible matches; a later line still applies",
			hba: []string{"host replication all db1.example.com reject", "host all +admins 10.0.0.0/8 reject",
				"host all all samenet reject", "host replication all 10.0.0.2/32 trust"},
			want: []string{"[2] would turn away " + local,
				"[0] may turn away " + repl, "[1] may turn away " + su, "[2] may turn away " + su},
		},
		{
			name: "samehost is this server only",
			hba:  []string{"host all all samehost reject"},
			want: []string{"[0] would turn away " + local},
		},
		{
			name: "quoted keywords are names; lists",
			hba:  []string{`host "all" "all" 0.0.0.0/0 reject`, `host sales,"postgres" app,postgres 10.0.0.0/8 reject`},
			want: []string{"[1] would turn away " + su},
		},
		{
			name: "a client certificate required",
			hba:  []string{"hostnossl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full"},
			want: []string{"[0] may turn away " + local},
		},
		{
			name: "an external service",
			hba:  []string{"host all all 0.0.0.0/0 ldap ldapserver=ldap.example.com"},
			want: []string{"[0] may turn away " + local, "[0] may turn away " + su},
		},
		{
			name:   "Regent's own connection to a specific listen address",
			mutate: func(c *Config) { c.Listen = "10.0.0.2:5432" },
			hba:    []string{"host all all 127.0.0.1/32 reject", "host all postgres 10.0.0.2/32 peer"},
			want: []string{`[1] would turn away Regent's superuser connection to its own PostgreSQL (user "postgres" from 10.0.0.2)`,
				"[1] would turn away " + su},
		},
		{
			name: "unparsable lines",
			hba:  []string{"hots all all 0.0.0.0/0 trust", "host all all", `host "all all 0.0.0.0/0 trust`},
			want: []string{`[0] "hots all all 0.0.0.0/0 trust": unknown connection type "hots"`,
				`[1] "host all all": too few fields`, `[2] "host \"all all 0.0.0.0/0 trust": unterminated quote`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			c.PgHBA = tc.hba
			var got []string
			for _, w := range c.HBAWarnings() {
				got = append(got, summarize(t, c, w))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\nall:\n%s", diff, strings.Join(c.HBAWarnings(), "\n"))
			}
		})
	}
}

// summarize shortens a warning to "[index] verb who", or to its parse
// error, checking that it names the key and quotes the configured line.
func summarize(t *testing.T, c Config, w string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(w, "postgres.pg_hba[")
	idx, rest, _ := strings.Cut(rest, "] ")
	n, err := strconv.Atoi(idx)
	if !ok || err != nil || n >= len(c.PgHBA) {
		t.Fatalf("warning does not name the key: %s", w)
	}
	if msg, ok := strings.CutSuffix(rest, "; PostgreSQL refuses a pg_hba.conf it cannot parse"); ok {
		return "[" + idx + "] " + msg
	}
	rest, ok = strings.CutPrefix(rest, strconv.Quote(c.PgHBA[n])+" ")
	if !ok {
		t.Errorf("warning does not quote line %d: %s", n, w)
	}
	who, _, ok := strings.Cut(rest, " before Regent's own lines (")
	if !ok {
		t.Fatalf("warning does not say why: %s", w)
	}
	return "[" + idx + "] " + who
}

func TestParseHBALine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *hbaLine
	}{
		{"  # only a comment", nil},
		{"local all postgres peer", &hbaLine{typ: "local", dbs: toks("all"), users: toks("postgres"), method: "peer"}},
		{"host  db1, db2\t\"a b\",\"x\"\"y\"  10.0.0.0/8 scram-sha-256 # note", &hbaLine{typ: "host",
			dbs: toks("db1", "db2"), users: []hbaToken{{`a b`, true}, {`x"y`, true}}, addr: "10.0.0.0/8", method: "scram-sha-256"}},
		{"hostssl replication all 10.0.0.0 255.0.0.0 cert clientcert=verify-full map=m", &hbaLine{typ: "hostssl",
			dbs: toks("replication"), users: toks("all"), addr: "10.0.0.0", mask: "255.0.0.0", method: "cert",
			options: []string{"clientcert=verify-full", "map=m"}}},
		{"host all all db.example.com md5", &hbaLine{typ: "host", dbs: toks("all"), users: toks("all"), addr: "db.example.com", method: "md5"}},
	} {
		got, err := parseHBALine(tc.in)
		if err != nil {
			t.Errorf("parseHBALine(%q): %v", tc.in, err)
			continue
		}
		if got != nil {
			got.text = ""
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(hbaLine{}, hbaToken{})); diff != "" {
			t.Errorf("parseHBALine(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func toks(names ...string) []hbaToken {
	var out []hbaToken
	for _, n := range names {
		out = append(out, hbaToken{text: n})
	}
	return out
}
