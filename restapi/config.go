package restapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/internal/secret"
)

// DefaultListen is Patroni's default REST API address.
const DefaultListen = "127.0.0.1:8008"

// Config is the `restapi:` section of regent.yml.
type Config struct {
	// Listen is the host:port the server binds. Default 127.0.0.1:8008.
	Listen string `yaml:"listen"`
	// ConnectAddress is the host:port peers and patronictl use to reach this
	// member; it becomes the member key's api_url. Default: Listen.
	ConnectAddress string `yaml:"connect_address"`
	// Authentication, when set, is required (HTTP Basic) on every write
	// endpoint: POST, PUT, PATCH and DELETE. GET, HEAD and OPTIONS stay
	// open for health checks, as in Patroni.
	Authentication Authentication `yaml:"authentication"`
	// CertFile and KeyFile (PEM) turn on TLS: the API is then served over
	// https and api_url says so.
	CertFile string `yaml:"certfile"`
	KeyFile  string `yaml:"keyfile"`
	// CAFile (PEM) holds the CAs that sign client certificates (with
	// VerifyClient) and the peers' server certificates.
	CAFile string `yaml:"cafile"`
	// VerifyClient is none (default), optional (a client certificate is
	// verified when given, and required on write endpoints) or required
	// (the TLS handshake fails without one).
	VerifyClient string `yaml:"verify_client"`
	// AllowUnauthenticated accepts a non-loopback Listen whose write
	// endpoints need neither credentials nor a client certificate. Without
	// it such a config is refused: anyone who reaches the port could
	// switch over, reinitialize or rewrite the dynamic config. A risk the
	// operator takes knowingly (e.g. a port only a firewall guards).
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// Allowlist (IP addresses and CIDR networks) restricts the write
	// endpoints to these client addresses, as Patroni's restapi.allowlist:
	// a write from elsewhere is refused with 403 before any other check.
	// Empty (default) allows every address unless AllowlistIncludeMembers.
	Allowlist []string `yaml:"allowlist"`
	// AllowlistIncludeMembers also allows the hosts of the cluster members'
	// api_url (from the agent's cluster view), as Patroni's
	// restapi.allowlist_include_members. Setting it turns the allowlist
	// on even when Allowlist is empty.
	AllowlistIncludeMembers bool `yaml:"allowlist_include_members"`
	// MaxStreams caps the concurrent switchover event streams (SSE); one
	// past the cap gets 503. Default DefaultMaxStreams.
	MaxStreams int `yaml:"max_streams"`
}

// DefaultMaxStreams is the default cap on concurrent event streams: far
// more than the operators and tools that follow a switchover at once, far
// fewer than the goroutines and sockets that would hurt the agent.
const DefaultMaxStreams = 64

// Authentication is restapi.authentication: the HTTP Basic credentials of
// the write endpoints.
type Authentication struct {
	Username string        `yaml:"username"`
	Password secret.String `yaml:"password"`
}

// Enabled reports whether credentials are configured.
func (a Authentication) Enabled() bool { return a.Username != "" || a.Password != "" }

// Values of Config.VerifyClient.
const (
	VerifyClientNone     = "none"
	VerifyClientOptional = "optional"
	VerifyClientRequired = "required"
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ConnectAddress == "" {
		c.ConnectAddress = c.Listen
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
}

// Validate checks both addresses; every error names its key
// ("restapi.listen: …"). Listen may use port 0 (any free port) and a
// wildcard host; ConnectAddress may not, since peers dial it.
func (c Config) Validate() error {
	var errs []error
	listenHost, _, listenErr := splitAddr(c.Listen, true)
	if listenErr != nil {
		errs = append(errs, fmt.Errorf("restapi.listen: %w", listenErr))
	}
	if host, _, err := splitAddr(c.ConnectAddress, false); err != nil {
		errs = append(errs, fmt.Errorf("restapi.connect_address: %w", err))
	} else if ip, perr := netip.ParseAddr(host); host == "" || (perr == nil && ip.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("restapi.connect_address: %q is not an address peers can dial; set restapi.connect_address", c.ConnectAddress))
	}
	errs = append(errs, c.validateAuth(), c.validateTLS())
	if listenErr == nil { // a bad listen address is reported above
		errs = append(errs, c.validateExposure(listenHost))
	}
	if _, err := parseAllowlist(c.Allowlist); err != nil {
		errs = append(errs, err)
	}
	if c.MaxStreams < 0 {
		errs = append(errs, fmt.Errorf("restapi.max_streams: %d is negative", c.MaxStreams))
	}
	return errors.Join(errs...)
}

// validateExposure refuses to serve unauthenticated writes beyond
// loopback: a non-loopback listen address needs restapi.authentication or
// client certificates, or restapi.allow_unauthenticated to accept the risk.
// host is the listen address's host.
func (c Config) validateExposure(host string) error {
	if loopbackHost(host) || c.AllowUnauthenticated || c.writesAuthenticated() {
		return nil
	}
	return fmt.Errorf("restapi.listen: %s is not a loopback address and the write endpoints (switchover, "+
		"restart, reinitialize, config) would accept anyone: set restapi.authentication (username and password) "+
		"or client certificates (restapi.certfile, restapi.keyfile, restapi.cafile and restapi.verify_client: "+
		"optional or required), or accept the risk with restapi.allow_unauthenticated: true", c.Listen)
}

// writesAuthenticated reports whether every write must authenticate: HTTP
// Basic, or a verified client certificate on https.
func (c Config) writesAuthenticated() bool {
	return c.Authentication.Enabled() || (c.TLS() && c.CAFile != "" && c.verifyClient() != VerifyClientNone)
}

// loopbackHost reports a listen host only this machine can reach:
// "localhost" or a loopback IP. An empty host is the wildcard; any other
// name may resolve anywhere.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c Config) validateAuth() error {
	a := c.Authentication
	switch {
	case a.Username != "" && a.Password == "":
		return errors.New("restapi.authentication.username: set without restapi.authentication.password")
	case a.Password != "" && a.Username == "":
		return errors.New("restapi.authentication.password: set without restapi.authentication.username")
	case strings.Contains(a.Username, ":"):
		return errors.New("restapi.authentication.username: must not contain ':' (HTTP Basic)")
	}
	return nil
}

// TLS reports whether the API is served over https.
func (c Config) TLS() bool { return c.CertFile != "" && c.KeyFile != "" }

// APIURL is the URL other members and patronictl use to reach this
// member's status document: "http://<connect_address>/patroni", or
// https:// when TLS is on.
func (c Config) APIURL() string {
	scheme := "http://"
	if c.TLS() {
		scheme = "https://"
	}
	return scheme + c.ConnectAddress + "/patroni"
}

// splitAddr checks a host:port; zeroPort allows port 0.
func splitAddr(addr string, zeroPort bool) (string, int, error) {
	if addr == "" {
		return "", 0, errors.New("required (host:port)")
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 || (port == 0 && !zeroPort) {
		return "", 0, fmt.Errorf("%q: invalid port %q", addr, portStr)
	}
	return host, port, nil
}
