package dcs

import (
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"strings"
)

// KV is one etcd key-value pair as the parser needs it. Key is the full key.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Lease          int64
}

// ParseCluster builds a view from the key-values under keys.Prefix() read at
// revision rev. Parsing is lenient, as Patroni's readers are
// (patroni-compat.md §1.3): a value that is not valid JSON counts as empty;
// the leader and initialize keys are raw text; members are only keys of the
// form members/<name> (exactly one slash); role "master" reads as
// "primary"; the failover key also accepts the legacy "leader:candidate"
// string; history lines may have 3 to 5 elements. Any other key goes to
// Extra. LoadedAt is left zero for the caller to set.
//
// The cache and dcstest.Fake both build their views with it.
func ParseCluster(keys Keys, kvs []KV, rev int64) *Cluster {
	c := &Cluster{Revision: rev, Members: map[string]Member{}, MemberRevs: map[string]int64{}, Extra: map[string]Value{}}
	for _, kv := range kvs {
		c.apply(keys, kv, false)
	}
	return c
}

// clone returns a copy whose maps may be modified; everything else in a
// view is replaced, never modified in place.
func (c *Cluster) clone() *Cluster {
	n := *c
	n.Members = maps.Clone(c.Members)
	n.MemberRevs = maps.Clone(c.MemberRevs)
	n.Extra = maps.Clone(c.Extra)
	if n.Members == nil {
		n.Members = map[string]Member{}
	}
	if n.MemberRevs == nil {
		n.MemberRevs = map[string]int64{}
	}
	if n.Extra == nil {
		n.Extra = map[string]Value{}
	}
	return &n
}

// apply sets (or, when deleted, clears) the part of c that kv holds and
// returns the change bit. c must be exclusively owned by the caller.
func (c *Cluster) apply(keys Keys, kv KV, deleted bool) Change {
	name := keys.Name(kv.Key)
	if name == "" {
		return 0
	}
	raw := Value{Data: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
	switch name {
	case "leader":
		c.Leader = nil
		if !deleted {
			c.Leader = &Leader{Name: string(kv.Value), Lease: kv.Lease,
				CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
		}
	case "config":
		c.Config = nil
		if !deleted {
			c.Config = &raw
		}
	case "initialize":
		c.Initialize = nil
		if !deleted {
			s := string(kv.Value)
			c.Initialize = &s
		}
	case "status":
		c.Status = Status{}
		if !deleted {
			lenientJSON(kv.Value, &c.Status)
		}
	case "history":
		c.History = nil
		if !deleted {
			c.History = parseHistory(kv.Value)
		}
	case "sync":
		c.Sync, c.SyncRev = Sync{}, 0
		if !deleted {
			lenientJSON(kv.Value, &c.Sync)
			c.SyncRev = kv.ModRevision
		}
	case "failover":
		c.Failover, c.FailoverRev = Failover{}, 0
		if !deleted {
			c.Failover = parseFailover(kv.Value)
			c.FailoverRev = kv.ModRevision
		}
	default:
		c.applyOther(name, raw, deleted)
	}
	return keys.Change(kv.Key)
}

func (c *Cluster) applyOther(name string, raw Value, deleted bool) {
	if member, ok := memberName(name); ok {
		delete(c.Members, member)
		delete(c.MemberRevs, member)
		if !deleted {
			c.Members[member] = parseMember(raw.Data)
			c.MemberRevs[member] = raw.ModRevision
		}
		return
	}
	delete(c.Extra, name)
	if !deleted {
		c.Extra[name] = raw
	}
}

// lenientJSON decodes data into v. Invalid JSON leaves v at its zero value;
// a field of the wrong type is skipped and the other fields are kept, as
// encoding/json does for an UnmarshalTypeError.
func lenientJSON(data []byte, v any) {
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(data, v); err != nil && !errors.As(err, &typeErr) {
		// A syntax error may leave v partly filled: reset it to empty.
		switch p := v.(type) {
		case *Member:
			*p = Member{}
		case *Status:
			*p = Status{}
		case *Sync:
			*p = Sync{}
		case *Failover:
			*p = Failover{}
		}
	}
}

// parseMember reads member JSON, or the legacy bare libpq URL whose
// application_name query parameter holds the API URL.
func parseMember(data []byte) Member {
	var m Member
	if s := strings.TrimSpace(string(data)); strings.HasPrefix(s, "postgres") {
		return parseLegacyMember(s)
	}
	lenientJSON(data, &m)
	if m.XLogLocation != nil && !validXLog(data) {
		m.XLogLocation = nil // of the wrong type: unknown, not 0
	}
	if m.Role == "master" {
		m.Role = "primary"
	}
	return m
}

func validXLog(data []byte) bool {
	var v struct {
		X uint64 `json:"xlog_location"`
	}
	return json.Unmarshal(data, &v) == nil
}

func parseLegacyMember(s string) Member {
	u, err := url.Parse(s)
	if err != nil {
		return Member{ConnURL: s}
	}
	q := u.Query()
	api := q.Get("application_name")
	q.Del("application_name")
	u.RawQuery = q.Encode()
	return Member{ConnURL: u.String(), APIURL: api}
}

// parseFailover reads the failover JSON object or, when the value is not
// JSON, the legacy "leader:candidate" string.
func parseFailover(data []byte) Failover {
	if !json.Valid(data) {
		leader, member, _ := strings.Cut(string(data), ":")
		return Failover{Leader: strings.TrimSpace(leader), Member: strings.TrimSpace(member)}
	}
	var f Failover
	lenientJSON(data, &f)
	return f
}

// parseHistory reads the history array line by line, skipping lines that
// are not arrays.
func parseHistory(data []byte) []HistoryEntry {
	var lines []json.RawMessage
	if err := json.Unmarshal(data, &lines); err != nil {
		return nil
	}
	out := make([]HistoryEntry, 0, len(lines))
	for _, line := range lines {
		var h HistoryEntry
		if err := json.Unmarshal(line, &h); err == nil {
			out = append(out, h)
		}
	}
	return out
}
