package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// WatchdogPolicy says in which rounds the agents run with the watchdog.
type WatchdogPolicy string

const (
	// WatchdogHalf (the default): half of the rounds run with the journal
	// watchdog, half with the default configuration (watchdog off). The
	// seed decides which half comes first; the odd round goes to it.
	WatchdogHalf WatchdogPolicy = ""
	// WatchdogOn: every round with the watchdog.
	WatchdogOn WatchdogPolicy = "on"
	// WatchdogOff: every round without.
	WatchdogOff WatchdogPolicy = "off"
)

// ParseWatchdogPolicy reads -chaos.watchdog: half (or ""), on or off.
func ParseWatchdogPolicy(s string) (WatchdogPolicy, error) {
	switch s {
	case "", "half":
		return WatchdogHalf, nil
	case "on", "off":
		return WatchdogPolicy(s), nil
	}
	return "", fmt.Errorf("watchdog policy %q: want half, on or off", s)
}

// RoundPlan is what the scheduler decided for a round before the run.
type RoundPlan struct {
	Kind FaultKind
	Hold time.Duration
	// Watchdog: the agents run with the watchdog in this round.
	Watchdog bool
	// Action pairs an operator action with the fault ("" for none);
	// ActionAt is when it starts relative to the injection (< 0: just
	// before it, ≥ 0: while the fault holds).
	Action   ActionKind
	ActionAt time.Duration
}

// schedule is what planRounds draws from.
type schedule struct {
	Rounds           int
	Kinds            []FaultKind
	Actions          []ActionKind // the actions to pair faults with (none: no actions)
	MinHold, MaxHold time.Duration
	Watchdog         WatchdogPolicy
	// Favor are kinds drawn in a third of the rounds (those a round may
	// run), the others from all of Kinds: routing mode's few kinds would
	// otherwise come up about once in 10 rounds.
	Favor []FaultKind
}

// errNoFault: no fault kind may run in a round without the watchdog.
var errNoFault = errors.New("every fault kind chosen stops the primary's agent, which needs the watchdog; add other kinds or use -chaos.watchdog=on")

// planRounds draws every round's fault, hold, watchdog and action. It is
// pure: the same rng state gives the same plan.
//
// Watchdog: rounds are laid out in two blocks (see WatchdogHalf) so that a
// run switches once: switching restarts every agent (Run.switchConfig).
// A round without the watchdog draws only kinds that leave the primary's
// agent running (nothing could fence a primary whose agent is stopped).
// Actions: a round whose fault pairs with an enabled action (actionPairs)
// gets one in half the cases, started 0.1–1 s before the injection or in
// the first half of the hold. A plan with none gets one anyway: the
// first round with a pairable fault, or else the last round redrawn
// among the pairable kinds, so that even a short run exercises an action.
func planRounds(rng *rand.Rand, sc schedule) ([]RoundPlan, error) {
	wd := watchdogLayout(rng, sc.Rounds, sc.Watchdog)
	var safe []FaultKind // the kinds a round without the watchdog may run
	for _, k := range sc.Kinds {
		if s, err := specOf(k); err == nil && !s.stopsAgent {
			safe = append(safe, k)
		}
	}
	if len(safe) == 0 && slices.Contains(wd, false) {
		if sc.Watchdog == WatchdogOff {
			return nil, errNoFault
		}
		for i := range wd {
			wd[i] = true
		}
	}
	plans := make([]RoundPlan, sc.Rounds)
	acted := false
	for i := range plans {
		kinds := sc.Kinds
		if !wd[i] {
			kinds = safe
		}
		if fav := favored(sc.Favor, kinds); len(fav) > 0 && rng.IntN(3) == 0 {
			kinds = fav
		}
		p := RoundPlan{Kind: kinds[rng.IntN(len(kinds))], Watchdog: wd[i]}
		p.Hold = sc.MinHold + time.Duration(rng.Int64N(int64(sc.MaxHold-sc.MinHold)))
		if s, err := specOf(p.Kind); err == nil && s.routing {
			// The routing kinds bring their switchover: right before
			// the injection when the fault waits for its pause (a
			// switchover is over in a few hundred milliseconds), else
			// once the cut is in place.
			p.Action, p.ActionAt = ActionSwitchover, between(rng, 200, 1000)
			if s.stopsAgent {
				p.ActionAt = -time.Millisecond
			}
			acted = true
		} else if acts := pairable(sc.Actions, p.Kind); len(acts) > 0 && rng.IntN(2) == 0 {
			p.Action, p.ActionAt = drawAction(rng, acts, p.Hold)
			acted = true
		}
		plans[i] = p
	}
	if !acted && len(plans) > 0 {
		forceAction(rng, plans, sc, safe)
	}
	groupFence(plans)
	return plans, nil
}

// favored lists the kinds of favor among kinds.
func favored(favor, kinds []FaultKind) []FaultKind {
	return slices.DeleteFunc(slices.Clone(favor), func(k FaultKind) bool { return !slices.Contains(kinds, k) })
}

// groupFence moves the fence kinds' rounds after the others within each
// watchdog block, keeping both orders: switching the fence hook on or off
// restarts every agent, as switching the watchdog does.
func groupFence(plans []RoundPlan) {
	for start := 0; start < len(plans); {
		end := start
		for end < len(plans) && plans[end].Watchdog == plans[start].Watchdog {
			end++
		}
		block := plans[start:end]
		slices.SortStableFunc(block, func(a, b RoundPlan) int {
			fa, fb := fenced(a.Kind), fenced(b.Kind)
			switch {
			case fa == fb:
				return 0
			case fb:
				return -1
			}
			return 1
		})
		start = end
	}
}

// watchdogLayout says which of n rounds run with the watchdog.
func watchdogLayout(rng *rand.Rand, n int, policy WatchdogPolicy) []bool {
	wd := make([]bool, n)
	switch policy {
	case WatchdogOn:
		for i := range wd {
			wd[i] = true
		}
	case WatchdogOff:
	default:
		offFirst := rng.IntN(2) == 0
		first := (n + 1) / 2
		for i := range wd {
			wd[i] = (i < first) != offFirst
		}
	}
	return wd
}

// pairable lists the enabled actions that pair with kind k.
func pairable(actions []ActionKind, k FaultKind) []ActionKind {
	var out []ActionKind
	for _, a := range actions {
		if pairsWith(a, k) {
			out = append(out, a)
		}
	}
	return out
}

// drawAction picks one of acts and when it starts.
func drawAction(rng *rand.Rand, acts []ActionKind, hold time.Duration) (ActionKind, time.Duration) {
	a := acts[rng.IntN(len(acts))]
	if rng.IntN(2) == 0 {
		return a, -between(rng, 100, 1000)
	}
	return a, time.Duration(rng.Int64N(int64(hold/2) + 1))
}

// forceAction gives a plan without any action one (see planRounds).
func forceAction(rng *rand.Rand, plans []RoundPlan, sc schedule, safe []FaultKind) {
	for i := range plans {
		if acts := pairable(sc.Actions, plans[i].Kind); len(acts) > 0 {
			plans[i].Action, plans[i].ActionAt = drawAction(rng, acts, plans[i].Hold)
			return
		}
	}
	last := &plans[len(plans)-1]
	kinds := sc.Kinds
	if !last.Watchdog {
		kinds = safe
	}
	var candidates []FaultKind
	for _, k := range kinds {
		if len(pairable(sc.Actions, k)) > 0 {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return // no chosen kind pairs with an enabled action
	}
	last.Kind = candidates[rng.IntN(len(candidates))]
	last.Action, last.ActionAt = drawAction(rng, pairable(sc.Actions, last.Kind), last.Hold)
}
