package switchover

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/bytesize"
	"github.com/regent-ha/regent/postgres"
)

// Peer is a member's REST status (GET /patroni) as the checks need it.
type Peer struct {
	Name      string
	Reachable bool
	// Err says why an unreachable peer did not answer.
	Err            string
	State          string // PostgreSQL's state: running, stopped, …
	InRecovery     bool
	WatchdogFailed bool
	Timeline       int
	WAL            postgres.LSN
	// Replayed is the replay position of a peer in recovery.
	Replayed postgres.LSN
	// Streaming lists the application names of a primary's WAL senders in
	// state "streaming".
	Streaming []string
}

// Policy is the part of the dynamic config the checks apply.
type Policy struct {
	// MaximumLag is maximum_lag_on_failover, in bytes.
	MaximumLag      int64
	SynchronousMode bool
}

// Verdict is one candidate's pre-flight result (the JSON of a 412's
// candidates and of a dry run).
type Verdict struct {
	Member  string   `json:"member"`
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons,omitempty"`
}

// Preflight checks every candidate (or only the named one, to) against
// the leader, from the cluster view c and the peers' status (by name,
// leader included): a member of the cluster, no nofailover tag, in sync
// when synchronous mode has a sync set, reachable, and CheckCandidate. It
// returns each verdict, in name order, and the lag of each candidate it
// could measure.
func Preflight(c *dcs.Cluster, peers map[string]Peer, p Policy, leader, to string) ([]Verdict, map[string]int64) {
	lags := map[string]int64{}
	names := c.MemberNames()
	if to != "" && !slices.Contains(names, to) {
		return []Verdict{{Member: to, Reasons: []string{"not a member of the cluster"}}}, lags
	}
	ls := peers[leader]
	var verdicts []Verdict
	for _, name := range names {
		if name == leader || (to != "" && name != to) {
			continue
		}
		var reasons []string
		if c.Members[name].NoFailover() {
			reasons = append(reasons, "tag nofailover")
		}
		if p.SynchronousMode && c.Sync.Leader != "" && !c.Sync.Matches(name) {
			reasons = append(reasons, "not a synchronous standby")
		}
		if peer := peers[name]; !peer.Reachable {
			reasons = append(reasons, "unreachable: "+peer.Err)
		} else {
			why, lag := CheckCandidate(peer, ls, leader, p.MaximumLag)
			reasons = append(reasons, why...)
			if ls.Reachable {
				lags[name] = lag
			}
		}
		verdicts = append(verdicts, Verdict{Member: name, OK: len(reasons) == 0, Reasons: reasons})
	}
	return verdicts, lags
}

// CheckCandidate returns why a reachable candidate cannot take over from
// leader (none when it can): PostgreSQL running in recovery, no failed
// watchdog, and, when the leader answered, streaming from it on its
// timeline within maxLag bytes. lag is the candidate's distance behind
// the leader (0 when ahead or when the leader did not answer).
func CheckCandidate(p, leader Peer, leaderName string, maxLag int64) (reasons []string, lag int64) {
	if p.State != "running" {
		reasons = append(reasons, "PostgreSQL is "+p.State)
	}
	if !p.InRecovery {
		reasons = append(reasons, "running as a primary")
	}
	if p.WatchdogFailed {
		reasons = append(reasons, "watchdog failed")
	}
	if !leader.Reachable {
		return append(reasons, fmt.Sprintf("leader %s unreachable: %s", leaderName, leader.Err)), 0
	}
	if !slices.Contains(leader.Streaming, p.Name) {
		reasons = append(reasons, "not streaming from "+leaderName)
	}
	if p.Timeline != leader.Timeline {
		reasons = append(reasons, fmt.Sprintf("timeline %d differs from the leader's %d", p.Timeline, leader.Timeline))
	}
	lag = int64(leader.WAL) - int64(p.WAL)
	if lag > maxLag {
		reasons = append(reasons, fmt.Sprintf("lag %s > %s", bytesize.Format(lag), bytesize.Format(maxLag)))
	}
	return reasons, max(lag, 0)
}

// NoCandidateError is a refused switchover: no candidate qualifies. The
// REST API answers it with 412 and the rejections.
type NoCandidateError struct {
	Message  string
	Rejected []Verdict
}

func (e *NoCandidateError) Error() string { return e.Message }

// ChooseCandidate returns the named candidate if it passed, or the best
// passing one: least lag, then name (verdicts come in name order). With
// none, a *NoCandidateError lists every rejection.
func ChooseCandidate(verdicts []Verdict, lags map[string]int64, to string) (string, error) {
	var ok []string
	var rejected []Verdict
	for _, v := range verdicts {
		if v.OK {
			ok = append(ok, v.Member)
		} else {
			rejected = append(rejected, v)
		}
	}
	if len(ok) == 0 {
		msg := "no member qualifies as switchover candidate"
		if to != "" {
			msg = "candidate " + to + " does not qualify"
		}
		if len(verdicts) == 0 {
			msg = "the cluster has no member except the leader"
		}
		return "", &NoCandidateError{Message: msg, Rejected: rejected}
	}
	sort.SliceStable(ok, func(i, j int) bool { return lags[ok[i]] < lags[ok[j]] })
	return ok[0], nil
}

// CandidateList names the candidates for the pre-flight's started event.
func CandidateList(to string, verdicts []Verdict) string {
	if to != "" {
		return to
	}
	var names []string
	for _, v := range verdicts {
		names = append(names, v.Member)
	}
	return "best of [" + strings.Join(names, ", ") + "]"
}

// VerdictSummary is the pre-flight's completed event: the choice and every
// rejection.
func VerdictSummary(verdicts []Verdict, chosen string) string {
	parts := []string{"candidate " + chosen + " qualifies"}
	for _, v := range verdicts {
		if !v.OK {
			parts = append(parts, v.Member+" rejected: "+strings.Join(v.Reasons, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
