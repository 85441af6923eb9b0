package chaos

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-ha/regent/fencing"
)

func planFor(t *testing.T, seed uint64, sc schedule) []RoundPlan {
	t.Helper()
	if sc.MinHold == 0 {
		sc.MinHold, sc.MaxHold = 3*time.Second, 25*time.Second
	}
	plans, err := planRounds(rand.New(rand.NewPCG(seed, 7)), sc)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if len(plans) != sc.Rounds {
		t.Fatalf("seed %d: %d plans, want %d", seed, len(plans), sc.Rounds)
	}
	return plans
}

// countPlans counts the rounds planned without the watchdog, the
// switches between rounds with and without it, and the action rounds.
func countPlans(plans []RoundPlan) (off, switches, acts int) {
	for i, p := range plans {
		if !p.Watchdog {
			off++
		}
		if i > 0 && p.Watchdog != plans[i-1].Watchdog {
			switches++
		}
		if p.Action != "" {
			acts++
		}
	}
	return off, switches, acts
}

// TestPlanWatchdogHalf: half the rounds (the seed decides which half, the
// odd one goes to the first block), in two blocks so the run restarts its
// agents once, and no round without the watchdog stops the agent.
func TestPlanWatchdogHalf(t *testing.T) {
	offFirst := map[bool]bool{}
	for n := 1; n <= 9; n++ {
		for seed := range uint64(20) {
			plans := planFor(t, seed, schedule{Rounds: n, Kinds: AllFaults(), Actions: AllActions()})
			for i, p := range plans {
				if s, _ := specOf(p.Kind); !p.Watchdog && s.stopsAgent {
					t.Errorf("n=%d seed %d round %d: %s without the watchdog", n, seed, i+1, p.Kind)
				}
			}
			off, switches, _ := countPlans(plans)
			if off != n/2 && off != (n+1)/2 {
				t.Errorf("n=%d seed %d: %d rounds without the watchdog, want %d or %d", n, seed, off, n/2, (n+1)/2)
			}
			if switches > 1 {
				t.Errorf("n=%d seed %d: %d watchdog switches, want at most 1", n, seed, switches)
			}
			offFirst[!plans[0].Watchdog] = true
		}
	}
	if !offFirst[true] || !offFirst[false] {
		t.Errorf("the seed never chose one of the orders: %v", offFirst)
	}
}

// TestPlanShortRun: the short run (3 rounds per mode, every kind and
// action) always has a round without the watchdog and an action round.
func TestPlanShortRun(t *testing.T) {
	for seed := range uint64(300) {
		plans := planFor(t, seed, schedule{Rounds: shortRounds, Kinds: AllFaults(), Actions: AllActions()})
		off, _, acts := countPlans(plans)
		if off == 0 || acts == 0 {
			t.Fatalf("seed %d: %d rounds without the watchdog, %d with an action: %+v", seed, off, acts, plans)
		}
	}
}

// nonRouting is kinds without the routing kinds, which plan their own
// switchover (TestPlanRoutingKinds).
func nonRouting(kinds []FaultKind) []FaultKind {
	return slices.DeleteFunc(slices.Clone(kinds), func(k FaultKind) bool { return slices.Contains(RoutingFaults, k) })
}

func TestPlanActions(t *testing.T) {
	seen := map[ActionKind]bool{}
	before, during := 0, 0
	for seed := range uint64(200) {
		for _, p := range planFor(t, seed, schedule{Rounds: 10, Kinds: nonRouting(AllFaults()), Actions: AllActions()}) {
			if p.Hold < 3*time.Second || p.Hold >= 25*time.Second {
				t.Errorf("seed %d: hold %s outside [3s, 25s)", seed, p.Hold)
			}
			if p.Action == "" {
				continue
			}
			seen[p.Action] = true
			if !pairsWith(p.Action, p.Kind) {
				t.Errorf("seed %d: %s paired with %s", seed, p.Action, p.Kind)
			}
			switch {
			case p.ActionAt >= -time.Second && p.ActionAt <= -100*time.Millisecond:
				before++
			case p.ActionAt >= 0 && p.ActionAt <= p.Hold/2:
				during++
			default:
				t.Errorf("seed %d: %s starts at %s (hold %s)", seed, p.Action, p.ActionAt, p.Hold)
			}
		}
	}
	for _, a := range AllActions() {
		if !seen[a] {
			t.Errorf("action %s never drawn", a)
		}
	}
	if before == 0 || during == 0 {
		t.Errorf("actions before the injection %d, during %d: want both", before, during)
	}
}

func TestPlanPairingAndForcing(t *testing.T) {
	for _, a := range AllActions() {
		for _, k := range actionPairs(a) {
			if _, err := specOf(k); err != nil {
				t.Errorf("%s pairs with an unknown kind: %v", a, err)
			}
		}
	}
	if pairsWith(ActionPause, FreezeAgentPrimary) {
		t.Error("pause pairs with a frozen agent, whose watchdog maintenance mode disarms")
	}
	if !pairsWith(ActionTTLDown, FreezeAgentPrimary) || !pairsWith(ActionSwitchover, EtcdQuorumLoss) {
		t.Error("the ttl and switchover actions must pair with a frozen agent and with quorum loss")
	}
	// No pairable kind drawn: the last round is redrawn among the pairable.
	for seed := range uint64(50) {
		plans := planFor(t, seed, schedule{Rounds: 2, Kinds: []FaultKind{KillReplica, SlowEtcdAll}, Actions: []ActionKind{ActionPause}})
		if plans[0].Action == "" && plans[1].Action == "" {
			t.Fatalf("seed %d: no action round: %+v", seed, plans)
		}
	}
	// Nothing pairs: no action, no error.
	for _, p := range planFor(t, 1, schedule{Rounds: 4, Kinds: []FaultKind{KillReplica}, Actions: AllActions()}) {
		if p.Action != "" {
			t.Fatalf("an action paired with %s: %+v", p.Kind, p)
		}
	}
	// Actions off (the routing kinds bring their own switchover).
	for _, p := range planFor(t, 1, schedule{Rounds: 6, Kinds: nonRouting(AllFaults()), Actions: []ActionKind{}}) {
		if p.Action != "" {
			t.Fatalf("an action with actions off: %+v", p)
		}
	}
}

func TestPlanKindsThatNeedTheWatchdog(t *testing.T) {
	only := []FaultKind{KillAgentPrimary, FreezeAgentPrimary}
	for _, p := range planFor(t, 3, schedule{Rounds: 4, Kinds: only, Watchdog: WatchdogHalf}) {
		if !p.Watchdog {
			t.Fatalf("a round without the watchdog although every kind needs it: %+v", p)
		}
	}
	_, err := planRounds(rand.New(rand.NewPCG(1, 2)), schedule{Rounds: 2, Kinds: only, Watchdog: WatchdogOff,
		MinHold: time.Second, MaxHold: 2 * time.Second})
	if !errors.Is(err, errNoFault) {
		t.Fatalf("watchdog off with only agent-stopping kinds: err %v, want errNoFault", err)
	}
	for _, p := range planFor(t, 3, schedule{Rounds: 4, Kinds: AllFaults(), Watchdog: WatchdogOn}) {
		if !p.Watchdog {
			t.Fatalf("watchdog on: %+v", p)
		}
	}
}

func TestPlanIsSeeded(t *testing.T) {
	sc := schedule{Rounds: 12, Kinds: AllFaults(), Actions: AllActions()}
	a, b := planFor(t, 42, sc), planFor(t, 42, sc)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different plans:\n%+v\n%+v", a, b)
	}
	if c := planFor(t, 43, sc); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same plan")
	}
}

func TestTTLChoicesAreValidForTheAgent(t *testing.T) {
	down, up := ttlChoices(10, 1, 3, 3*time.Second)
	if !slices.Equal(down, []int{7, 8, 9}) || !slices.Equal(up, []int{12, 13, 14, 15}) {
		t.Fatalf("ttl choices at base 10 = %v / %v, want [7 8 9] / [12 13 14 15]", down, up)
	}
	for _, ttl := range slices.Concat(down, up) {
		if err := fencing.CheckTiming(time.Duration(ttl)*time.Second, time.Second, 3*time.Second); err != nil {
			t.Errorf("ttl %d: %v", ttl, err)
		}
	}
	for ttl, want := range map[int]string{
		6:  "loop_wait + 2·retry_timeout",
		4:  "loop_wait + 2·retry_timeout",
		10: "",
	} {
		err := validTTL(ttl, 1, 3, 3*time.Second)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("validTTL(%d) = %v, want %q", ttl, err, want)
		}
	}
	if err := validTTL(4, 1, 1, 3*time.Second); err == nil || !strings.Contains(err.Error(), "safety_margin") {
		t.Errorf("ttl 4 with safety_margin 3 s: %v, want a safety_margin error", err)
	}
	if down, _ := ttlChoices(7, 1, 3, 3*time.Second); len(down) != 0 {
		t.Errorf("below the smallest valid ttl: %v", down)
	}
}

func TestParseFlags(t *testing.T) {
	for in, want := range map[string]WatchdogPolicy{"": WatchdogHalf, "half": WatchdogHalf, "on": WatchdogOn, "off": WatchdogOff} {
		if got, err := ParseWatchdogPolicy(in); err != nil || got != want {
			t.Errorf("ParseWatchdogPolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseWatchdogPolicy("sometimes"); err == nil {
		t.Error("ParseWatchdogPolicy accepted garbage")
	}
	if got, _ := ParseActions(""); !slices.Equal(got, AllActions()) {
		t.Errorf("ParseActions(\"\") = %v", got)
	}
	if got, err := ParseActions("none"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ParseActions(none) = %#v, %v: want empty, not nil", got, err)
	}
	if got, _ := ParseActions("pause, ttl-up"); !slices.Equal(got, []ActionKind{ActionPause, ActionTTLUp}) {
		t.Errorf("ParseActions = %v", got)
	}
	if _, err := ParseActions("pause,reboot"); err == nil {
		t.Error("ParseActions accepted an unknown kind")
	}
}
