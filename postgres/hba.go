package postgres

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
)

// WriteHBA writes pg_hba.conf atomically: the user's postgres.pg_hba lines
// first, verbatim, then Regent's own — `local all <superuser>`, then for
// the loopback addresses and each member host (IPv4 as /32, IPv6 as /128,
// CIDRs and host names as given) `host replication <replication user> H`
// and `host all <superuser> H`, all scram-sha-256. PostgreSQL uses the first
// line that matches a connection, so a configured line is never shadowed
// (Debian's `local all postgres peer`, a `trust` line, a `reject`), and
// Regent's lines serve its own connections that no configured line takes
// (HBAWarnings reports configured lines that would turn them away).
// memberHosts should include this member's own connect host. changed
// reports whether the content differs; the agent then reloads.
func (i *Instance) WriteHBA(memberHosts []string) (changed bool, err error) {
	changed, err = i.writeFileAtomic(filepath.Join(i.cfg.DataDir, hbaFile), []byte(i.renderHBA(memberHosts)), 0o600)
	if err != nil {
		return false, fmt.Errorf("write pg_hba.conf: %w", err)
	}
	return changed, nil
}

func (i *Instance) renderHBA(memberHosts []string) string {
	su := hbaIdent(i.cfg.Superuser.Username)
	repl := hbaIdent(i.cfg.Replication.Username)
	var b strings.Builder
	b.WriteString(managedHeader + ": rewritten when members change. Do not edit;\n")
	b.WriteString("# set lines with postgres.pg_hba in regent.yml. PostgreSQL uses the first\n")
	b.WriteString("# matching line: the configured lines come first, Regent's after them.\n")
	if len(i.cfg.PgHBA) > 0 {
		b.WriteString("\n# postgres.pg_hba\n")
		for _, line := range i.cfg.PgHBA {
			b.WriteString(strings.TrimSpace(line) + "\n")
		}
	}
	b.WriteString("\n# Regent: its own connections (local superuser, members' replication and pg_rewind)\n")
	fmt.Fprintf(&b, "local all %s scram-sha-256\n", su)
	seen := map[string]bool{}
	for _, h := range append([]string{"127.0.0.1", "::1"}, memberHosts...) {
		addr := hbaAddress(h)
		if addr == "" || seen[addr] {
			continue
		}
		seen[addr] = true
		fmt.Fprintf(&b, "host replication %s %s scram-sha-256\n", repl, addr)
		fmt.Fprintf(&b, "host all %s %s scram-sha-256\n", su, addr)
	}
	return b.String()
}

// hbaAddress renders a member host for the address column: an IP as a
// single-host CIDR, a CIDR or host name as is, "" for nothing usable.
func hbaAddress(host string) string {
	host = strings.TrimSpace(host)
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.ContainsAny(host, " \t\"#") {
		return ""
	}
	if p, err := netip.ParsePrefix(host); err == nil {
		return p.String()
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	return host
}

var plainIdent = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// hbaKeywords would be read as keywords when bare.
var hbaKeywords = map[string]bool{"all": true, "sameuser": true, "samerole": true, "samegroup": true, "replication": true}

// hbaIdent quotes a role name for pg_hba.conf when needed.
func hbaIdent(name string) string {
	if plainIdent.MatchString(name) && !hbaKeywords[name] {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
