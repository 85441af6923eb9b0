package dcs

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/testpki"
)

func TestConfigValidateNamesKeys(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"valid", Config{Endpoints: []string{"http://127.0.0.1:2379", "https://etcd2:2379", "unix:///run/etcd.sock"}}, nil},
		{"no endpoints", Config{}, []string{"etcd.endpoints: required"}},
		{"bad endpoint", Config{Endpoints: []string{"http://a:2379", "foo"}}, []string{`etcd.endpoints[1]: "foo" is not a URL`}},
		{"host:port is not a URL", Config{Endpoints: []string{"localhost:2379"}}, []string{`etcd.endpoints[0]: "localhost:2379" is not a URL`}},
		{"wrong scheme", Config{Endpoints: []string{"ftp://a"}}, []string{`etcd.endpoints[0]: "ftp://a" has scheme "ftp"`}},
		{"cert without key", Config{Endpoints: []string{"https://a:2379"}, Cert: "c.pem"}, []string{"etcd.cert: set without etcd.key"}},
		{"key without cert", Config{Endpoints: []string{"https://a:2379"}, Key: "k.pem"}, []string{"etcd.key: set without etcd.cert"}},
		{"username without password", Config{Endpoints: []string{"http://a:2379"}, Username: "root"}, []string{"etcd.username: set without etcd.password"}},
		{"password without username", Config{Endpoints: []string{"http://a:2379"}, Password: "pw"}, []string{"etcd.password: set without etcd.username"}},
		{"negative timeout", Config{Endpoints: []string{"http://a:2379"}, DialTimeout: -time.Second}, []string{"etcd.dial_timeout"}},
		{"all problems reported", Config{Cert: "c"}, []string{"etcd.endpoints: required", "etcd.cert: set without etcd.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.DialTimeout != DefaultDialTimeout {
		t.Errorf("DialTimeout = %s", c.DialTimeout)
	}
	c = Config{DialTimeout: time.Second}
	c.SetDefaults()
	if c.DialTimeout != time.Second {
		t.Errorf("SetDefaults overwrote DialTimeout: %s", c.DialTimeout)
	}
}

func TestConfigTLSErrorsNameKeys(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		cfg  Config
		want string
	}{
		"missing ca":    {Config{CACert: filepath.Join(dir, "nope.pem")}, "etcd.cacert:"},
		"junk ca":       {Config{CACert: junk}, "etcd.cacert: no PEM certificate"},
		"junk key pair": {Config{Cert: junk, Key: junk}, "etcd.cert/etcd.key:"},
	} {
		_, err := tt.cfg.tlsConfig()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: tlsConfig() = %v, want %q", name, err, tt.want)
		}
	}
	if tc, err := (Config{}).tlsConfig(); tc != nil || err != nil {
		t.Errorf("no TLS files: got %v, %v; want nil, nil", tc, err)
	}
}

func TestConfigPasswordRedacted(t *testing.T) {
	c := Config{Endpoints: []string{"http://a:2379"}, Username: "u", Password: "hunter2"}
	if s := fmt.Sprintf("%+v %v", c, c); strings.Contains(s, "hunter2") {
		t.Errorf("password printed: %s", s)
	}
}

func TestConfigTLSLoadsFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "regent-test-ca")
	pair := ca.Issue(t, dir, "client")
	tc, err := Config{CACert: ca.File, Cert: pair.CertFile, Key: pair.KeyFile}.tlsConfig()
	if err != nil {
		t.Fatalf("tlsConfig: %v", err)
	}
	if !tc.RootCAs.Equal(ca.Pool()) || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("tlsConfig = %+v", tc)
	}
}
