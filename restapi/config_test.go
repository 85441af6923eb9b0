package restapi

import (
	"slices"
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Listen != "127.0.0.1:8008" || c.ConnectAddress != "127.0.0.1:8008" {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if got := c.APIURL(); got != "http://127.0.0.1:8008/patroni" {
		t.Errorf("APIURL = %q", got)
	}
	c = Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.5:8008"}
	c.SetDefaults()
	if c.ConnectAddress != "10.0.0.5:8008" || c.APIURL() != "http://10.0.0.5:8008/patroni" {
		t.Errorf("an explicit connect_address was overridden: %+v", c)
	}
	c = Config{ConnectAddress: "[fd00::5]:8008"}
	if c.APIURL() != "http://[fd00::5]:8008/patroni" {
		t.Errorf("IPv6 APIURL = %q", c.APIURL())
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"explicit", Config{Listen: "0.0.0.0:8008", ConnectAddress: "pg1.example.com:8008", AllowUnauthenticated: true}, ""},
		{"any port for listen", Config{Listen: "127.0.0.1:0", ConnectAddress: "127.0.0.1:8008"}, ""},
		{"ipv6", Config{Listen: "[::]:8008", ConnectAddress: "[fd00::1]:8008", Authentication: Authentication{Username: "u", Password: "p"}}, ""},
		{"listen empty", Config{ConnectAddress: "10.0.0.1:8008"}, "restapi.listen: required"},
		{"listen without port", Config{Listen: "127.0.0.1", ConnectAddress: "10.0.0.1:8008"}, "restapi.listen:"},
		{"listen bad port", Config{Listen: "127.0.0.1:http", ConnectAddress: "10.0.0.1:8008"}, "restapi.listen:"},
		{"listen port too big", Config{Listen: "127.0.0.1:70000", ConnectAddress: "10.0.0.1:8008"}, "restapi.listen:"},
		{"connect_address empty", Config{Listen: "127.0.0.1:8008"}, "restapi.connect_address: required"},
		{"connect_address port 0", Config{Listen: "127.0.0.1:8008", ConnectAddress: "10.0.0.1:0"}, "restapi.connect_address:"},
		{"connect_address wildcard", Config{Listen: "0.0.0.0:8008", ConnectAddress: "0.0.0.0:8008"}, "restapi.connect_address:"},
		{"connect_address ipv6 wildcard", Config{Listen: "[::]:8008", ConnectAddress: "[::]:8008"}, "restapi.connect_address:"},
		{"connect_address no host", Config{Listen: ":8008", ConnectAddress: ":8008"}, "restapi.connect_address:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkValidate(t, tc.cfg, tc.wantErr) })
	}
	// Defaults derived from a wildcard listen address must be caught.
	c := Config{Listen: "0.0.0.0:8008"}
	c.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "restapi.connect_address") {
		t.Errorf("wildcard listen without connect_address: %v", err)
	}
}

// checkValidate fails t unless cfg.Validate returns an error containing
// every non-empty want, or nil when no want is given ("" stands for none).
func checkValidate(t *testing.T, cfg Config, want ...string) {
	t.Helper()
	want = slices.DeleteFunc(want, func(w string) bool { return w == "" })
	err := cfg.Validate()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("Validate = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate = nil, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate = %v\nwant it to contain %q", err, w)
		}
	}
}
