package chaos

// Which fault kinds a run draws from: the mixes, the aliases of
// -chaos.faults and the mode checks. The kinds themselves and how each
// is injected and healed are faults.go's.

import (
	"fmt"
	"strings"
)

// AllFaults lists every fault kind.
func AllFaults() []FaultKind {
	var out []FaultKind
	for _, s := range specs {
		out = append(out, s.kind)
	}
	return out
}

// DefaultFaults is the default mix: every kind but the fence kinds,
// which need the fence hook configured and switch it on per round, the
// routing kinds, which need routing mode, and the standby-cluster kinds,
// which need -chaos.standby.
func DefaultFaults() []FaultKind {
	var out []FaultKind
	for _, s := range specs {
		if !s.fence && !s.routing && !s.standby {
			out = append(out, s.kind)
		}
	}
	return out
}

// RoutingMix is routing mode's default mix: the default one and the
// routing kinds.
func RoutingMix() []FaultKind { return append(DefaultFaults(), RoutingFaults...) }

// CheckKinds refuses a routing kind outside routing mode: it has no
// PgBouncer to act on.
func CheckKinds(kinds []FaultKind, routing bool) error {
	for _, k := range kinds {
		if s, err := specOf(k); err != nil {
			return err
		} else if s.routing && !routing {
			return fmt.Errorf("fault kind %q needs routing mode (-chaos.routing, make chaos ROUTING=1)", k)
		}
	}
	return nil
}

// ParseFaults reads a comma-separated list of fault kinds ("": the
// default mix, RoutingMix in routing mode); "fence" stands for
// FenceFaults, "routing" for RoutingFaults, "standby" for StandbyFaults.
func ParseFaults(list string, routing bool) ([]FaultKind, error) {
	var out []FaultKind
	for k := range strings.SplitSeq(list, ",") {
		switch k = strings.TrimSpace(k); k {
		case "":
		case "fence":
			out = append(out, FenceFaults...)
		case "routing":
			out = append(out, RoutingFaults...)
		case "standby":
			out = append(out, StandbyFaults...)
		default:
			if _, err := specOf(FaultKind(k)); err != nil {
				return nil, err
			}
			out = append(out, FaultKind(k))
		}
	}
	switch {
	case len(out) == 0 && routing:
		return RoutingMix(), nil
	case len(out) == 0:
		return DefaultFaults(), nil
	}
	if err := CheckKinds(out, routing); err != nil {
		return nil, err
	}
	return out, nil
}

func specOf(k FaultKind) (*faultSpec, error) {
	for _, s := range specs {
		if s.kind == k {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown fault kind %q (known: %v)", k, AllFaults())
}
