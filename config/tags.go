package config

import (
	"fmt"

	"github.com/regent-ha/regent/internal/lenient"
)

// Tags are the member's configured tags, published in its member key.
// nofailover, noloadbalance, nosync and clonefrom follow Patroni; Regent adds
// failover_priority (higher wins a tie on WAL position; 0 = default).
type Tags map[string]any

// NoFailover: this member never becomes leader on its own.
func (t Tags) NoFailover() bool { return lenient.Truthy(t["nofailover"]) }

// NoStream (Patroni's nostream tag): the replica restores WAL from the
// archive only (postgres.recovery_conf.restore_command), never streams.
func (t Tags) NoStream() bool { return lenient.Truthy(t["nostream"]) }

func (t Tags) failoverPriority() (int, error) {
	v, ok := t["failover_priority"]
	if !ok || v == nil {
		return 0, nil
	}
	n, err := lenient.Integer(v)
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// DefaultSyncPriority is Patroni 4.1's sync_priority when the tag is absent.
const DefaultSyncPriority = 1

func (t Tags) syncPriority() (int, error) {
	v, ok := t["sync_priority"]
	if !ok || v == nil {
		return DefaultSyncPriority, nil
	}
	n, err := lenient.Integer(v)
	if err != nil {
		return DefaultSyncPriority, err
	}
	if n < 0 {
		return DefaultSyncPriority, fmt.Errorf("%d is negative", n)
	}
	return int(n), nil
}

// SyncPriority is the sync_priority tag (Patroni 4.1): higher is preferred
// when choosing synchronous standbys, 0 never synchronous. Absent or
// invalid reads as 1; regent.yml refuses an invalid value.
func (t Tags) SyncPriority() int {
	n, _ := t.syncPriority()
	return n
}

// NoSync: the member never becomes a synchronous standby (the nosync tag,
// or sync_priority 0).
func (t Tags) NoSync() bool { return lenient.Truthy(t["nosync"]) || t.SyncPriority() == 0 }

// FailoverPriority returns the tie-break priority (0 when unset or invalid).
func (t Tags) FailoverPriority() int {
	n, _ := t.failoverPriority()
	return n
}

// Published returns the tags as written to the member key: the special
// flags are omitted when false, as Patroni does.
func (t Tags) Published() map[string]any {
	out := map[string]any{}
	for k, v := range t {
		switch k {
		case "nofailover", "noloadbalance", "nosync", "clonefrom":
			if !lenient.Truthy(v) {
				continue
			}
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
