package postgres

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// HBAWarnings reports the postgres.pg_hba lines that would turn away one of
// Regent's own connections. The configured lines come before Regent's in
// pg_hba.conf (WriteHBA) and PostgreSQL uses the first line that matches,
// so a configured line that matches one of them with `reject`, `peer`,
// `cert` or another method Regent's password cannot satisfy locks Regent
// out. It simulates PostgreSQL's first match for each kind of connection
// Regent makes (hbaConns); what it cannot know without the server (group
// membership, host names, samenet, included files) makes a line a possible
// match, reported with "may". A warning, not an error: the operator may
// mean it (e.g. a member that must never be a replication source). Pure:
// no DNS, no files.
func (c Config) HBAWarnings() []string {
	var out []string
	var lines []hbaLine
	for n, text := range c.PgHBA {
		l, err := parseHBALine(text)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("postgres.pg_hba[%d] %q: %v; PostgreSQL refuses a pg_hba.conf it cannot parse", n, strings.TrimSpace(text), err))
		case l != nil:
			l.index = n
			lines = append(lines, *l)
		}
	}
	for _, conn := range c.hbaConns() {
		out = append(out, conn.warnings(lines)...)
	}
	return out
}

// hbaConn is one kind of connection Regent makes, as pg_hba.conf sees it.
type hbaConn struct {
	what        string // "Regent's superuser connection to its own PostgreSQL"
	effect      string // what breaks when it is turned away
	user        string
	database    string // "" for a physical replication connection
	addr        netip.Addr
	host        string // the address as configured, for messages
	fromThis    bool   // from this host (samehost, samenet match)
	ssl         bool   // the connection uses SSL
	replication bool
}

// hbaConns are Regent's connections: the agent's superuser session to its
// own server (TCP to the listen host, or loopback for a wildcard, with
// sslmode=disable), and what the other members send to this one —
// pg_basebackup and streaming as the replication user, pg_rewind and the
// timeline check as the superuser to database postgres — sampled from this
// member's connect address (all members share the same pg_hba lines).
// libpq's default sslmode=prefer uses SSL when the server has ssl on.
func (c Config) hbaConns() []hbaConn {
	var conns []hbaConn
	if c.Listen != "" {
		host, _ := splitHostPort(c.Listen)
		host = localDialHost(host)
		conns = append(conns, hbaConn{
			what: "Regent's superuser connection to its own PostgreSQL", effect: "the agent could not see or manage PostgreSQL",
			user: c.Superuser.Username, database: "postgres", host: host, addr: parseAddr(host), fromThis: true,
		})
	}
	if c.ConnectAddress != "" {
		host, _ := splitHostPort(c.ConnectAddress)
		ssl := sslOn(c.Parameters["ssl"])
		conns = append(conns, hbaConn{
			what: "the members' replication connections", effect: "replicas could not clone or stream",
			user: c.Replication.Username, host: host, addr: parseAddr(host), ssl: ssl, replication: true,
		}, hbaConn{
			what: "the members' superuser connections (pg_rewind, timeline checks)", effect: "a former primary could not rewind",
			user: c.Superuser.Username, database: "postgres", host: host, addr: parseAddr(host), ssl: ssl,
		})
	}
	return conns
}

func parseAddr(host string) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// sslOn reads a boolean GUC value as PostgreSQL does.
func sslOn(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "true", "yes", "1":
			return true
		}
	}
	return false
}

// warnings walks lines in order, as PostgreSQL does, up to the first line
// that certainly matches conn.
func (conn hbaConn) warnings(lines []hbaLine) []string {
	var out []string
	who := fmt.Sprintf("%s (user %q", conn.what, conn.user)
	if conn.host != "" {
		who += " from " + conn.host
	}
	who += ")"
	for _, l := range lines {
		m := l.match(conn)
		if m == matchNo {
			continue
		}
		verdict, why := l.methodVerdict()
		if verdict != matchNo {
			verb := "would turn away"
			if m == matchMaybe || verdict == matchMaybe {
				verb = "may turn away"
			}
			out = append(out, fmt.Sprintf("postgres.pg_hba[%d] %q %s %s before Regent's own lines (%s): %s",
				l.index, l.text, verb, who, why, conn.effect))
		}
		if m == matchYes {
			break
		}
	}
	return out
}

// match is a three-valued answer: what can be known from the config alone.
type match int

const (
	matchNo match = iota
	matchMaybe
	matchYes
)

// both is the answer to "a and b".
func both(a, b match) match { return min(a, b) }

// anyOf is the best answer among the items of a list field.
func anyOf(toks []hbaToken, f func(hbaToken) match) match {
	best := matchNo
	for _, t := range toks {
		best = max(best, f(t))
	}
	return best
}

// hbaLine is one parsed pg_hba.conf record.
type hbaLine struct {
	index   int    // position in postgres.pg_hba
	text    string // as configured, trimmed
	typ     string // local, host, hostssl, hostnossl, hostgssenc, hostnogssenc
	dbs     []hbaToken
	users   []hbaToken
	addr    string // "" for local
	mask    string // the separate netmask column, if any
	method  string
	options []string
}

// hbaToken is one item of a field; a quoted one is never a keyword.
type hbaToken struct {
	text   string
	quoted bool
}

func (t hbaToken) keyword(k string) bool { return !t.quoted && t.text == k }

// match tells whether l applies to conn.
func (l hbaLine) match(conn hbaConn) match {
	m := l.matchType(conn)
	m = both(m, anyOf(l.dbs, conn.matchDatabase))
	m = both(m, anyOf(l.users, conn.matchUser))
	return both(m, l.matchAddress(conn))
}

func (l hbaLine) matchType(conn hbaConn) match {
	switch l.typ {
	case "host", "hostnogssenc":
		return matchYes
	case "hostssl":
		return yesIf(conn.ssl)
	case "hostnossl":
		return yesIf(!conn.ssl)
	}
	return matchNo // local: Regent connects over TCP; hostgssenc: Regent does not use GSSAPI encryption
}

func yesIf(b bool) match {
	if b {
		return matchYes
	}
	return matchNo
}

// matchDatabase: a physical replication connection matches only the
// keyword replication (not all, not a database name).
func (conn hbaConn) matchDatabase(t hbaToken) match {
	switch {
	case conn.replication:
		return yesIf(t.keyword("replication"))
	case t.keyword("all"):
		return matchYes
	case t.keyword("sameuser"):
		return yesIf(conn.database == conn.user)
	case t.keyword("samerole"), t.keyword("samegroup"):
		return matchMaybe
	case t.keyword("replication"):
		return matchNo
	case !t.quoted && (strings.HasPrefix(t.text, "@") || strings.HasPrefix(t.text, "/")):
		return matchMaybe // an included file; a regular expression (PostgreSQL 16)
	}
	return yesIf(t.text == conn.database)
}

func (conn hbaConn) matchUser(t hbaToken) match {
	switch {
	case t.keyword("all"):
		return matchYes
	case !t.quoted && strings.HasPrefix(t.text, "+"):
		if t.text[1:] == conn.user {
			return matchYes // a role is a member of itself
		}
		return matchMaybe
	case !t.quoted && (strings.HasPrefix(t.text, "@") || strings.HasPrefix(t.text, "/")):
		return matchMaybe
	}
	return yesIf(t.text == conn.user)
}

func (l hbaLine) matchAddress(conn hbaConn) match {
	switch l.addr {
	case "all":
		return matchYes
	case "samehost":
		return yesIf(conn.fromThis)
	case "samenet":
		if conn.fromThis {
			return matchYes
		}
		return matchMaybe
	}
	p, ok := l.prefix()
	if !ok || !conn.addr.IsValid() {
		return matchMaybe // a host name: only DNS can tell
	}
	return yesIf(p.Contains(conn.addr))
}

// prefix is the line's address as a CIDR, from `a/n` or `a mask`.
func (l hbaLine) prefix() (netip.Prefix, bool) {
	if l.mask == "" {
		p, err := netip.ParsePrefix(l.addr)
		return p.Masked(), err == nil
	}
	a, err1 := netip.ParseAddr(l.addr)
	m, err2 := netip.ParseAddr(l.mask)
	if err1 != nil || err2 != nil || a.BitLen() != m.BitLen() {
		return netip.Prefix{}, false
	}
	bits := 0
	for _, b := range m.AsSlice() {
		for ; b&0x80 != 0; b <<= 1 {
			bits++
		}
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// methodVerdict tells whether l's method turns Regent away: Regent
// authenticates with its configured password and no client certificate.
func (l hbaLine) methodVerdict() (match, string) {
	for _, o := range l.options {
		if strings.HasPrefix(o, "clientcert=") && o != "clientcert=no-verify" {
			return matchMaybe, "it asks for a client certificate, which Regent does not configure"
		}
	}
	switch l.method {
	case "trust", "scram-sha-256", "md5", "password":
		return matchNo, ""
	case "reject":
		return matchYes, "reject"
	case "peer", "ident", "cert", "gss", "sspi":
		return matchYes, fmt.Sprintf("method %s, but Regent authenticates with its password", l.method)
	}
	return matchMaybe, fmt.Sprintf("method %s: only if it accepts Regent's password", l.method)
}

var hbaTypes = map[string]bool{"local": true, "host": true, "hostssl": true, "hostnossl": true, "hostgssenc": true, "hostnogssenc": true}

// parseHBALine parses one pg_hba.conf record; nil for a blank or comment
// line. Fields are separated by blanks, items of a field by commas; double
// quotes keep blanks, commas and keywords literal ("" is a quote).
func parseHBALine(text string) (*hbaLine, error) {
	fields, err := splitHBAFields(text)
	if err != nil || len(fields) == 0 {
		return nil, err
	}
	word := func(f []hbaToken) string {
		if len(f) != 1 || f[0].quoted {
			return ""
		}
		return f[0].text
	}
	l := &hbaLine{text: strings.TrimSpace(text), typ: word(fields[0])}
	if !hbaTypes[l.typ] {
		return nil, fmt.Errorf("unknown connection type %q", fields[0][0].text)
	}
	rest := fields[1:]
	need := 3 // database, user, method
	if l.typ != "local" {
		need = 4 // and address
	}
	if len(rest) < need {
		return nil, errors.New("too few fields")
	}
	l.dbs, l.users, rest = rest[0], rest[1], rest[2:]
	if l.typ != "local" {
		l.addr, rest = word(rest[0]), rest[1:]
		if _, err := netip.ParseAddr(l.addr); err == nil && len(rest) >= 2 {
			l.mask, rest = word(rest[0]), rest[1:] // address and netmask columns
		}
	}
	if len(rest) == 0 {
		return nil, errors.New("no authentication method")
	}
	l.method = word(rest[0])
	for _, f := range rest[1:] {
		l.options = append(l.options, word(f))
	}
	return l, nil
}

// splitHBAFields splits a line into fields of comma-separated tokens, up
// to a # outside quotes.
func splitHBAFields(text string) ([][]hbaToken, error) {
	var (
		fields  [][]hbaToken
		field   []hbaToken
		tok     strings.Builder
		haveTok bool
		quoted  bool
		inQuote bool
		comma   bool // the field goes on after a comma
	)
	endToken := func() {
		if haveTok {
			field = append(field, hbaToken{text: tok.String(), quoted: quoted})
		}
		tok.Reset()
		haveTok, quoted = false, false
	}
	endField := func() {
		endToken()
		if len(field) > 0 {
			fields = append(fields, field)
		}
		field = nil
	}
	for i := 0; i < len(text); i++ {
		ch := text[i]
		switch {
		case inQuote && ch == '"' && i+1 < len(text) && text[i+1] == '"':
			tok.WriteByte('"')
			i++
		case inQuote && ch == '"':
			inQuote = false
		case inQuote:
			tok.WriteByte(ch)
		case ch == '#':
			i = len(text)
		case ch == '"':
			inQuote, quoted, haveTok, comma = true, true, true, false
		case ch == ',':
			endToken()
			comma = true
		case ch == ' ' || ch == '\t':
			endToken()
			if !comma {
				endField()
			}
		default:
			tok.WriteByte(ch)
			haveTok, comma = true, false
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	endField()
	return fields, nil
}
