package genconfig

import (
	"fmt"
	"strings"
	"testing"

	"github.com/regent-ha/regent/config"
)

func parse(t *testing.T, out []byte) *config.Config {
	t.Helper()
	for _, k := range []string{"PGSUPERPASS", "PGREPLPASS", "RESTAPI_PASSWORD"} {
		t.Setenv(k, "placeholder")
	}
	cfg, err := config.Parse(out)
	if err != nil {
		t.Fatalf("generated file does not parse: %v\n%s", err, out)
	}
	return cfg
}

func TestSampleIsAValidConfig(t *testing.T) {
	out, err := Render(Options{Name: "db-1", Scope: "sales", Etcd: []string{"https://10.0.0.21:2379", "https://10.0.0.22:2379"}, ConnectHost: "10.0.0.11"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, out)
	if cfg.Name != "db-1" || cfg.Scope != "sales" || len(cfg.Etcd.Endpoints) != 2 || cfg.Postgres.ConnectAddress != "10.0.0.11:5432" ||
		cfg.RestAPI.ConnectAddress != "10.0.0.11:8008" {
		t.Errorf("sample = name %q scope %q etcd %v connect %q/%q", cfg.Name, cfg.Scope, cfg.Etcd.Endpoints, cfg.Postgres.ConnectAddress, cfg.RestAPI.ConnectAddress)
	}
	if strings.Contains(string(out), "connect_address: 10.0.0.11:5432  # CHECK") {
		t.Errorf("an address given with --connect-host is still marked CHECK")
	}
}

func TestSecretsStayOutOfTheFile(t *testing.T) {
	out, err := Render(Options{Name: "pg1"}, &Source{DataDir: "/data", Port: 5432, Superuser: "postgres", ListenAddresses: "*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"${PGSUPERPASS}", "${PGREPLPASS}", "${RESTAPI_PASSWORD}"} {
		if !strings.Contains(string(out), ref) {
			t.Errorf("the file does not reference %s", ref)
		}
	}
}

// TestParametersAreSorted: commands and paths stay with the host, the rest
// goes cluster-wide, and what Regent manages is left out with the reason.
func TestParametersAreSorted(t *testing.T) {
	src := &Source{DataDir: "/data", Port: 5433, Superuser: "postgres", ListenAddresses: "10.0.0.5, 127.0.0.1",
		Parameters: map[string]string{
			"work_mem": "8MB", "max_connections": "100", "archive_command": "cp %p /a/%f",
			"ssl_cert_file": "/etc/ssl/pg.crt", "primary_conninfo": "host=old", "hot_standby": "on",
		}}
	out, err := Render(Options{Name: "pg1"}, src)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, out)
	local := cfg.Postgres.Parameters
	if local["archive_command"] != "cp %p /a/%f" || local["ssl_cert_file"] != "/etc/ssl/pg.crt" || len(local) != 2 {
		t.Errorf("postgres.parameters = %v, want archive_command and ssl_cert_file only", local)
	}
	dyn, err := cfg.BootstrapDynamic()
	if err != nil {
		t.Fatal(err)
	}
	p := dyn.PostgresParameters
	if _, isString := p["max_connections"].(string); isString || p["work_mem"] != "8MB" || fmt.Sprint(p["max_connections"]) != "100" || len(p) != 2 {
		t.Errorf("bootstrap.dcs postgresql.parameters = %#v, want work_mem and max_connections (a number)", p)
	}
	for _, left := range []string{"# left out: hot_standby = on:", "# left out: primary_conninfo = host=old: managed by Regent"} {
		if !strings.Contains(string(out), left) {
			t.Errorf("the file does not say %q", left)
		}
	}
	if cfg.Postgres.Listen != "10.0.0.5,127.0.0.1:5433" {
		t.Errorf("postgres.listen = %q", cfg.Postgres.Listen)
	}
	if cfg.Scope != defaultScope {
		t.Errorf("scope without --scope and cluster_name = %q, want %q", cfg.Scope, defaultScope)
	}
}

func TestListenOf(t *testing.T) {
	for _, tc := range []struct {
		addrs string
		want  string
	}{
		{"*", "*:5432"},
		{"localhost", "localhost:5432"},
		{"10.0.0.5, 127.0.0.1", "10.0.0.5,127.0.0.1:5432"},
		{"::1", "*:5432"}, // an IPv6 address cannot be written as host:port there
		{"", "*:5432"},
	} {
		if got := listenOf(tc.addrs, 5432); got != tc.want {
			t.Errorf("listenOf(%q) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}

func TestHBALine(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"local", hbaLine("local", []string{"all"}, []string{"all"}, "", "", "peer", nil), "local all all peer"},
		{"cidr as mask", hbaLine("host", []string{"sales", "hr"}, []string{"app"}, "10.1.0.0", "255.255.0.0", "scram-sha-256", nil),
			"host sales,hr app 10.1.0.0 255.255.0.0 scram-sha-256"},
		{"hostname, options", hbaLine("hostssl", []string{"all"}, []string{"+admins"}, "db.example.com", "", "cert", []string{"clientcert=verify-full"}),
			"hostssl all +admins db.example.com cert clientcert=verify-full"},
		{"quoted name", hbaLine("host", []string{"my db"}, []string{"all"}, "10.0.0.1", "255.255.255.255", "md5", nil),
			`host "my db" all 10.0.0.1 255.255.255.255 md5`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
