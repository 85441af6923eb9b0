package agent

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/dcs"
)

// Quorum commit (synchronous_mode: quorum, Patroni 4). PostgreSQL waits
// for ANY k of the standbys listed in synchronous_standby_names (numsync
// k, set S); the sync key names the voters V and a quorum q: a candidate
// in V may promote only after seeing q+1 members of V (itself included)
// and being the most advanced of them. Every commit acknowledged under
// "ANY k (S)" is on k members of S, so any q+1 voters include one of them
// as long as q ≥ |V ∪ S| − k and fewer than k members of S lie outside V
// (quorumCovers). The leader changes one half at a time and checks, before
// each write, that the pair it leaves behind keeps that overlap — growing
// the set writes the key first, shrinking it writes the setting first,
// QuorumStateResolver's order in Patroni — so an election at any moment
// finds every acknowledged commit. An empty V means only the former
// leader may promote, which is always safe.

// ssnSpec is a parsed synchronous_standby_names: Num of Names (ANY or
// FIRST; for the election's safety both count as "any Num of Names", a
// FIRST list being served by whichever listed standbys are connected).
// Star is "*": any standby, member or not.
type ssnSpec struct {
	Num   int
	Names []string
	Any   bool
	Star  bool
}

// String renders the spec as synchronous_standby_names, in Patroni's
// format: "ANY 1 (a,b)" in quorum mode, "2 (a,b)" or "a" otherwise.
func (p ssnSpec) String() string {
	switch {
	case p.Star:
		return "*"
	case len(p.Names) == 0:
		return ""
	case !p.Any && len(p.Names) == 1 && p.Num == 1:
		return quoteStandby(p.Names[0])
	}
	q := make([]string, len(p.Names))
	for i, n := range p.Names {
		q[i] = quoteStandby(n)
	}
	prefix := ""
	if p.Any {
		prefix = "ANY "
	}
	return fmt.Sprintf("%s%d (%s)", prefix, p.Num, strings.Join(q, ","))
}

// parseSSN reads synchronous_standby_names in any of PostgreSQL's forms:
// "", "*", "a, b" (FIRST 1), "k (a, b)", "FIRST k (…)", "ANY k (…)".
// Names come back sorted; a number it cannot read counts as 1.
func parseSSN(v string) ssnSpec {
	v = strings.TrimSpace(v)
	var p ssnSpec
	if v == "" {
		return p
	}
	p.Num = 1
	if i := strings.Index(v, "("); i >= 0 {
		head := strings.Fields(strings.ToUpper(v[:i]))
		if len(head) > 0 && (head[0] == "ANY" || head[0] == "FIRST") {
			p.Any = head[0] == "ANY"
			head = head[1:]
		}
		if len(head) == 1 {
			if n, err := strconv.Atoi(head[0]); err == nil && n >= 0 {
				p.Num = n
			}
		}
		v = strings.TrimSuffix(strings.TrimSpace(v[i+1:]), ")")
	}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "*" {
			p.Star = true
			continue
		}
		if strings.HasPrefix(n, `"`) {
			n = strings.ReplaceAll(strings.Trim(n, `"`), `""`, `"`)
		}
		if n != "" {
			p.Names = append(p.Names, n)
		}
	}
	slices.Sort(p.Names)
	return p
}

// quorumTarget is the setting quorum mode wants: ANY min(k, n) of all n
// eligible standbys; none → "" or, strict, "*" (writes wait for any).
func quorumTarget(eligible []string, wanted int, strict bool) ssnSpec {
	if len(eligible) == 0 {
		return ssnSpec{Star: strict, Num: boolInt(strict)}
	}
	return ssnSpec{Any: true, Num: min(wanted, len(eligible)), Names: slices.Sorted(slices.Values(eligible))}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// quorumCovers: every commit acknowledged under ssn is held by one of any
// q+1 members of voters. Empty voters (only the former leader) always are.
func quorumCovers(voters []string, q int, ssn ssnSpec) bool {
	if len(voters) == 0 {
		return true
	}
	if ssn.Star || ssn.Num < 1 {
		return false // acknowledged by anyone, or by no one: no voter is sure to hold it
	}
	outside := len(ssn.Names) - len(intersect(ssn.Names, voters))
	return outside < ssn.Num && q >= len(union(voters, ssn.Names))-ssn.Num
}

// quorumHoldsHistory: any q+1 voters include one confirmed standby (it
// flushed past the point the setting took effect, so it holds every
// commit acknowledged before), which covers the commits of earlier
// settings the key would otherwise stop covering. No voters hold nothing
// (bridgeKey handles an empty set before asking).
func quorumHoldsHistory(voters []string, q int, confirmed []string) bool {
	c := len(intersect(confirmed, voters))
	return c > 0 && q >= len(voters)-c
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// quorumKey is the sync key's quorum-mode content.
type quorumKey struct {
	Voters []string
	Quorum int
}

func (k quorumKey) equal(o quorumKey) bool {
	return k.Quorum == o.Quorum && slices.Equal(k.Voters, o.Voters)
}

func (k quorumKey) String() string {
	return fmt.Sprintf("quorum %d of [%s]", k.Quorum, strings.Join(k.Voters, ","))
}

// quorumStep is one tick of quorum-mode upkeep: write the key (when Key is
// set) and then the setting (when SSN is set), in that order. Reason says
// why, or what it waits for.
type quorumStep struct {
	Key    *quorumKey
	SSN    *ssnSpec
	Reason string
}

// decideQuorum is the leader's quorum-mode rule, pure: key is the sync key
// (ours only when its leader is me), cur the setting in force, confirmed
// the standbys of cur that flushed past the point it took effect,
// eligible the standbys that may be synchronous now. Each write keeps the
// invariant against what is in force at that moment (see the top of the
// file); a key that would need confirmation not yet seen waits a tick.
func decideQuorum(me string, key dcs.Sync, cur ssnSpec, confirmed, eligible []string, wanted int, strict bool) quorumStep {
	var st quorumStep
	have := quorumKey{Voters: key.Standbys(), Quorum: key.QuorumValue()}
	if key.Leader != me || (key.Quorum == nil && len(have.Voters) > 0 && !quorumCovers(have.Voters, 0, cur)) {
		// Another leader's key, or one written outside quorum mode that
		// does not cover the setting: start from "only me".
		have = quorumKey{}
		st.Key, st.Reason = &have, "the sync key is not mine in quorum form: name only me"
	}
	target := quorumTarget(eligible, wanted, strict)
	if cur.String() != target.String() {
		if !quorumCovers(have.Voters, have.Quorum, target) {
			k := bridgeKey(cur, target, confirmed)
			st.Key = &k
		}
		st.SSN = &target
		st.Reason = strings.TrimPrefix(st.Reason+"; synchronous_standby_names → "+quote(target.String()), "; ")
		return st
	}
	want := quorumKey{}
	if !target.Star && target.Num > 0 {
		c := len(intersect(confirmed, target.Names))
		want = quorumKey{Voters: target.Names, Quorum: max(len(target.Names)-target.Num, len(target.Names)-c)}
		if c == 0 || want.Quorum >= len(want.Voters) {
			if st.Key == nil {
				st.Reason = fmt.Sprintf("waiting for a standby of %s to confirm before the key names it", quote(target.String()))
			}
			return st // keep what is there: it covers the setting by induction
		}
	}
	if !want.equal(have) || st.Key != nil || key.Quorum == nil { // write Patroni 4's quorum field too
		st.Key, st.Reason = &want, "sync key → "+want.String()
	}
	return st
}

// bridgeKey is the key to write before the setting moves from cur to
// target, when the key in force does not cover target: it covers both
// settings and the history of cur, or, when no such key lets anyone be
// elected, names only the leader.
func bridgeKey(cur, target ssnSpec, confirmed []string) quorumKey {
	if cur.Star || cur.Num < 1 {
		// Commits under cur were acknowledged by any standby or by none:
		// no voter is sure to hold them (quorumCovers).
		return quorumKey{}
	}
	voters := union(cur.Names, target.Names)
	q := 0
	for _, s := range []ssnSpec{cur, target} {
		if s.Num > 0 && !s.Star {
			q = max(q, len(union(voters, s.Names))-s.Num)
		}
	}
	q = max(q, len(voters)-len(intersect(confirmed, voters)))
	k := quorumKey{Voters: voters, Quorum: q}
	if len(voters) == 0 || q >= len(voters) || !quorumCovers(voters, q, cur) || !quorumCovers(voters, q, target) ||
		!quorumHoldsHistory(voters, q, confirmed) {
		return quorumKey{}
	}
	return k
}

func quote(s string) string { return strconv.Quote(s) }

// quorumVotes counts, for a candidate in the quorum set, the set members
// it has seen (itself included) and names a seen member ahead of it that
// cannot be elected (nofailover, watchdog failed) but holds WAL it lacks.
func quorumVotes(s Snapshot, self Candidate) (seen int, block []string) {
	voters := s.View.Sync.Standbys()
	seen = 1
	for _, p := range s.Peers {
		if !slices.Contains(voters, p.Name) || !p.Reachable || !p.InRecovery || p.WAL == 0 {
			continue
		}
		seen++
		if (p.NoFailover || p.WatchdogFailed) && p.WAL > self.WAL {
			block = append(block, fmt.Sprintf("quorum commit: %s cannot be elected but is more advanced (%s > %s)", p.Name, p.WAL, self.WAL))
		}
	}
	need := s.View.Sync.QuorumValue() + 1
	if seen < need {
		block = append(block, fmt.Sprintf("quorum commit: saw %d of the quorum set %v counting me, need %d (ANY k of n needs n−k+1)", seen, voters, need))
	}
	return seen, block
}

// manageQuorum carries out decideQuorum: the key first, then the setting.
func (a *Agent) manageQuorum(ctx context.Context, s Snapshot, cur ssnSpec) error {
	repl := s.PG.Status.Replication
	eligible := pickSyncStandbys(repl, s.View.Members, len(repl))
	confirmed := confirmedSync(repl, cur.Names, a.ssnChangedAt)
	st := decideQuorum(a.name, s.View.Sync, cur, confirmed, eligible, s.Config.SynchronousNodeCount, s.Config.SynchronousModeStrict)
	if st.Key != nil {
		q := st.Key.Quorum
		if err := a.writeSyncKeyQuorum(ctx, s.View, st.Key.Voters, &q); err != nil {
			return err
		}
	}
	if st.SSN != nil {
		if err := a.setSSN(ctx, st.SSN.String(), s); err != nil {
			return err
		}
	}
	if st.Key == nil && st.SSN == nil && st.Reason != "" && st.Reason != a.quorumWait {
		a.log.Info("quorum commit", "reason", st.Reason)
	}
	a.quorumWait = st.Reason
	a.reportDegraded(len(eligible) == 0 && !s.Config.SynchronousModeStrict)
	return nil
}
