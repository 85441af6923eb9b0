package config

import (
	"fmt"

	"github.com/regent-ha/regent/internal/lenient"
)

// SyncMode is the dynamic config's synchronous_mode: off, on (Patroni's
// true: named synchronous standbys, FIRST semantics) or quorum (Patroni
// 4's quorum commit: ANY k of the eligible standbys).
type SyncMode uint8

const (
	SyncOff SyncMode = iota
	SyncOn
	SyncQuorum
)

// Enabled reports synchronous replication in either mode.
func (m SyncMode) Enabled() bool { return m != SyncOff }

// Quorum reports quorum commit.
func (m SyncMode) Quorum() bool { return m == SyncQuorum }

func (m SyncMode) String() string {
	switch m {
	case SyncOn:
		return "on"
	case SyncQuorum:
		return "quorum"
	}
	return "off"
}

// parseSyncMode reads synchronous_mode as Patroni does: the string
// "quorum", or a boolean (true/on/yes/1 leniently).
func parseSyncMode(v any) (SyncMode, error) {
	if s, ok := v.(string); ok && s == "quorum" {
		return SyncQuorum, nil
	}
	b, err := lenient.Bool(v)
	if err != nil {
		return SyncOff, fmt.Errorf("%v is not true, false or quorum", v)
	}
	if b {
		return SyncOn, nil
	}
	return SyncOff, nil
}
