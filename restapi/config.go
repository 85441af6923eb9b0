package restapi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
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
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ConnectAddress == "" {
		c.ConnectAddress = c.Listen
	}
}

// Validate checks both addresses; every error names its key
// ("restapi.listen: …"). Listen may use port 0 (any free port) and a
// wildcard host; ConnectAddress may not, since peers dial it.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := splitAddr(c.Listen, true); err != nil {
		errs = append(errs, fmt.Errorf("restapi.listen: %w", err))
	}
	if host, _, err := splitAddr(c.ConnectAddress, false); err != nil {
		errs = append(errs, fmt.Errorf("restapi.connect_address: %w", err))
	} else if ip, perr := netip.ParseAddr(host); host == "" || (perr == nil && ip.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("restapi.connect_address: %q is not an address peers can dial; set restapi.connect_address", c.ConnectAddress))
	}
	return errors.Join(errs...)
}

// APIURL is the URL other members and patronictl use to reach this
// member's status document: "http://<connect_address>/patroni".
func (c Config) APIURL() string {
	return "http://" + c.ConnectAddress + "/patroni"
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
