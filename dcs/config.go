package dcs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/regent-ha/regent/internal/secret"
	"github.com/regent-ha/regent/internal/tlsfile"
)

// DefaultDialTimeout bounds Connect's first round trip: long enough for a
// TLS handshake plus authentication across a data centre, short enough that
// an agent started while etcd is down reports it within one retry_timeout.
const DefaultDialTimeout = 3 * time.Second

// Config is the `etcd:` section of regent.yml.
type Config struct {
	// Endpoints are client URLs (http://, https://, unix://).
	Endpoints []string      `yaml:"endpoints"`
	Username  string        `yaml:"username"`
	Password  secret.String `yaml:"password"`
	// CACert, Cert and Key are PEM file paths for TLS.
	CACert string `yaml:"cacert"`
	Cert   string `yaml:"cert"`
	Key    string `yaml:"key"`
	// DialTimeout bounds Connect (default DefaultDialTimeout).
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
}

// Validate checks the section; every error names its key ("etcd.…").
// It does not read the certificate files: Connect does, and its errors name
// the key too.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Endpoints) == 0 {
		add("etcd.endpoints: required")
	}
	for i, ep := range c.Endpoints {
		if err := checkEndpoint(ep); err != nil {
			add("etcd.endpoints[%d]: %q %w", i, ep, err)
		}
	}
	if c.Cert != "" && c.Key == "" {
		add("etcd.cert: set without etcd.key")
	}
	if c.Key != "" && c.Cert == "" {
		add("etcd.key: set without etcd.cert")
	}
	if c.Username != "" && c.Password == "" {
		add("etcd.username: set without etcd.password")
	}
	if c.Password != "" && c.Username == "" {
		add("etcd.password: set without etcd.username")
	}
	if c.DialTimeout < 0 {
		add("etcd.dial_timeout: %s is negative", c.DialTimeout)
	}
	return errors.Join(errs...)
}

var errNotURL = errors.New("is not a URL")

func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return errNotURL
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return errNotURL
		}
	case "unix", "unixs":
		if u.Host == "" && u.Path == "" {
			return errNotURL
		}
	default:
		return fmt.Errorf("has scheme %q, want http, https, unix or unixs", u.Scheme)
	}
	return nil
}

// tlsConfig builds the client TLS configuration, nil when no file is set
// (https endpoints then verify against the system roots).
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		var err error
		if t.RootCAs, err = tlsfile.LoadCAPool("etcd.cacert", c.CACert); err != nil {
			return nil, err
		}
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd.cert/etcd.key: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}
