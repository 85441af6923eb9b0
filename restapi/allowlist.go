package restapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Members lists the cluster members' api_url hosts, for
// restapi.allowlist_include_members. The agent implements it from its
// watch-fed cluster view; it must not block (no etcd call per request).
type Members interface {
	// MemberHosts returns the host part (IP address or name) of every
	// member's api_url in the current view; nil when there is no view.
	MemberHosts() []string
}

// memberResolveTimeout bounds the DNS lookups of members' api_url host
// names on one refused-so-far write (Patroni resolves them per request
// too); members usually publish IP addresses, which need none.
const memberResolveTimeout = time.Second

// textAccessDenied is Patroni's text for a client outside the allowlist.
const textAccessDenied = "Access is denied"

// allowlist is restapi.allowlist parsed, plus the members switch.
type allowlist struct {
	prefixes []netip.Prefix
	members  bool
}

// enabled reports whether writes are restricted by address at all.
func (a allowlist) enabled() bool { return len(a.prefixes) > 0 || a.members }

// parseAllowlist reads IP addresses and CIDR networks; errors name the
// entry ("restapi.allowlist[2]: …").
func parseAllowlist(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			ip = ip.Unmap()
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("restapi.allowlist[%d]: %q is not an IP address or a CIDR network (host names are not resolved)", i, e))
	}
	return out, errors.Join(errs...)
}

// clientAddr is the request's peer IP address (IPv4-mapped IPv6 unmapped).
func clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// inAllowlist reports whether the client may write: inside a listed network,
// or, with allowlist_include_members, one of a member's api_url hosts.
func (s *Server) inAllowlist(r *http.Request) bool {
	ip, ok := clientAddr(r)
	if !ok {
		return false
	}
	for _, p := range s.allow.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if !s.allow.members || s.members == nil {
		return false
	}
	var names []string
	for _, h := range s.members.MemberHosts() {
		if m, err := netip.ParseAddr(h); err == nil {
			if m.Unmap() == ip {
				return true
			}
			continue
		}
		names = append(names, h)
	}
	return s.resolvesTo(r.Context(), names, ip)
}

// resolvesTo looks up member host names (bounded) and reports whether one
// of them has ip.
func (s *Server) resolvesTo(ctx context.Context, names []string, ip netip.Addr) bool {
	if len(names) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, memberResolveTimeout)
	defer cancel()
	for _, name := range names {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err != nil {
			s.log.Debug("cannot resolve a member's api_url host", "host", name, "err", err)
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == ip {
				return true
			}
		}
	}
	return false
}
