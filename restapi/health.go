package restapi

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/lenient"
)

// This file holds the health-check decision rules of patroni-compat.md §2.3.
// They are pure functions of a Snapshot, the clock reading of the request,
// its path and its raw query.

const (
	ok          = 200
	unavailable = 503
)

// probe is the evaluated input of one health check.
type probe struct {
	snap *Snapshot
	c    bool // C: the cached cluster view is not null
	l    bool // L: this member holds the leader lock
}

func newProbe(snap *Snapshot, now time.Time) probe {
	return probe{snap: snap, c: now.Before(snap.ViewFreshUntil), l: now.Before(snap.LeaderUntil)}
}

// codes are the intermediate codes of §2.3.
type codes struct {
	leader, primary, standbyLeader, replica int
}

func codeIf(b bool) int {
	if b {
		return ok
	}
	return unavailable
}

// intermediate computes the four codes; lagLimit is the lag= limit in bytes.
func (p probe) intermediate(lagLimit uint64) codes {
	st := &p.snap.Status
	role := st.Role
	lagging := p.snap.Optime > 0 && p.snap.Optime > satAdd(replayed(st), lagLimit)
	var c codes
	c.replica = codeIf(!lenient.Truthy(st.Tags["noloadbalance"]) && !lagging && role == "replica" && st.State == "running")
	switch {
	case !p.c && p.snap.Paused:
		c.leader = codeIf(role == "master" || role == "primary" || role == "standby_leader")
		c.primary = codeIf(role == "master" || role == "primary")
		c.standbyLeader = codeIf(role == "standby_leader")
	case p.l:
		c.leader = ok
		if p.snap.StandbyCluster {
			c.primary, c.replica = unavailable, unavailable
			c.standbyLeader = codeIf(role == "replica" || role == "standby_leader")
		} else {
			c.primary, c.standbyLeader = ok, unavailable
		}
	default:
		c.leader, c.primary, c.standbyLeader = unavailable, unavailable, unavailable
	}
	return c
}

// healthCode is the generic health handler's status for path and rawQuery.
func (p probe) healthCode(path, rawQuery string) int {
	var q url.Values
	if rawQuery != "" {
		q = parseQuery(rawQuery)
	}
	lagLimit := uint64(math.MaxUint64)
	if v := first(q, "lag"); v != "" {
		if n, good := parseSize(v); good {
			lagLimit = n
		}
	}
	code, tagged := p.route(p.intermediate(lagLimit), path)
	if tagged && code == ok && !tagsMatch(p.snap.Status.Tags, q) {
		code = unavailable
	}
	return code
}

// route matches path by substring in the order of §2.3 and reports whether
// tag filters apply to the result.
func (p probe) route(c codes, path string) (code int, tagged bool) {
	if path == "/" || path == "" {
		path = "/master"
	}
	has := func(s string) bool { return strings.Contains(path, s) }
	sync := p.snap.Status.SyncStandby
	switch {
	case has("standby_leader") || has("standby-leader"):
		return c.standbyLeader, false
	case has("leader"):
		return c.leader, false
	case has("master") || has("primary") || has("read-write"):
		return c.primary, false
	case has("replica"):
		return c.replica, true
	case has("read-only") && !has("sync"):
		if c.primary == ok || c.standbyLeader == ok {
			return ok, true
		}
		return c.replica, true
	case has("health"):
		return codeIf(p.snap.Status.State == "running"), true
	case !p.c:
		return unavailable, true
	}
	switch path {
	case "/sync", "/synchronous":
		if sync {
			return c.replica, true
		}
	case "/async", "/asynchronous":
		if !sync {
			return c.replica, true
		}
	case "/read-only-sync", "/read-only-synchronous":
		if c.primary == ok || c.standbyLeader == ok {
			return ok, true
		}
		if sync {
			return c.replica, true
		}
	}
	return unavailable, true
}

// parseQuery parses like Python's parse_qs: blank values are dropped.
func parseQuery(raw string) url.Values {
	q, _ := url.ParseQuery(raw) // malformed pairs are skipped, as parse_qs does
	for k, vs := range q {
		kept := vs[:0]
		for _, v := range vs {
			if v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(q, k)
		} else {
			q[k] = kept
		}
	}
	return q
}

func first(q url.Values, key string) string {
	if vs := q[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// tagsMatch applies the tag_<name>=<value> filters (first value only): the
// tag must exist and equal the value exactly; a non-string tag is compared
// in its lower-cased text form ("true", "1").
func tagsMatch(tags map[string]any, q url.Values) bool {
	for k, vs := range q {
		name, isTag := strings.CutPrefix(k, "tag_")
		if !isTag || len(vs) == 0 {
			continue
		}
		v, found := tags[name]
		if !found || v == nil {
			return false
		}
		if tagText(v) != vs[0] {
			return false
		}
	}
	return true
}

// tagText renders a tag value as Patroni compares it: strings as they are,
// anything else as str(value).lower().
func tagText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case uint64:
		return strconv.FormatUint(t, 10)
	case float64: // JSON numbers: 1 stays "1", not "1e+00"
		return strings.ToLower(strconv.FormatFloat(t, 'f', -1, 64))
	default:
		return strings.ToLower(fmt.Sprint(v))
	}
}

// parseSize parses lag=: an integer is bytes; B, kB, MB, GB and TB are
// 1024-based (case-sensitive, as PostgreSQL units). Values beyond uint64
// saturate. ok is false for anything else, which means "no limit".
func parseSize(s string) (n uint64, good bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:end], 10, 64)
	if err != nil { // only overflow is possible here
		n = math.MaxUint64
	}
	var mult uint64
	switch strings.TrimSpace(s[end:]) {
	case "", "B":
		mult = 1
	case "kB":
		mult = 1 << 10
	case "MB":
		mult = 1 << 20
	case "GB":
		mult = 1 << 30
	case "TB":
		mult = 1 << 40
	default:
		return 0, false
	}
	if n > math.MaxUint64/mult {
		return math.MaxUint64, true
	}
	return n * mult, true
}

func replayed(st *Status) uint64 {
	if st.XLog == nil || st.XLog.ReplayedLocation == nil {
		return 0
	}
	return *st.XLog.ReplayedLocation
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
