package dcs

import (
	"reflect"
	"strings"
)

// Change is a bitmask of the parts of the cluster view that changed.
type Change uint32

// The change bits, one per kind of key, plus ChangeReload.
const (
	ChangeLeader Change = 1 << iota
	ChangeConfig
	ChangeMembers
	ChangeStatus
	ChangeFailover
	ChangeSync
	ChangeHistory
	ChangeInitialize
	ChangeSwitchover // the switchover lock or a switchovers/<id> record
	ChangeOther      // any other key under the prefix (failsafe, decisions/…)
	ChangeSuspects   // a suspects/<member> key (fast failover)
	// ChangeReload: the view was rebuilt by a full Load (after start or a
	// lost watch); anything may have changed, the other bits say what did.
	ChangeReload
)

var changeNames = []string{
	"leader", "config", "members", "status", "failover", "sync",
	"history", "initialize", "switchover", "other", "suspects", "reload",
}

// Has reports whether any of bits is set in c.
func (c Change) Has(bits Change) bool { return c&bits != 0 }

// String lists the set bits, e.g. "leader|members".
func (c Change) String() string {
	var parts []string
	for i, n := range changeNames {
		if c&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Change classifies a full key name: which bit a write to it sets.
// Keys outside the cluster prefix give 0.
func (k Keys) Change(key string) Change {
	name := k.Name(key)
	switch name {
	case "":
		return 0
	case "leader":
		return ChangeLeader
	case "config":
		return ChangeConfig
	case "status":
		return ChangeStatus
	case "failover":
		return ChangeFailover
	case "sync":
		return ChangeSync
	case "history":
		return ChangeHistory
	case "initialize":
		return ChangeInitialize
	case "switchover":
		return ChangeSwitchover
	}
	if _, ok := memberName(name); ok {
		return ChangeMembers
	}
	if strings.HasPrefix(name, "switchovers/") {
		return ChangeSwitchover
	}
	if strings.HasPrefix(name, "suspects/") {
		return ChangeSuspects
	}
	return ChangeOther
}

// memberName returns <name> for "members/<name>": exactly one slash and a
// non-empty name (patroni-compat.md §1.1).
func memberName(name string) (string, bool) {
	m, ok := strings.CutPrefix(name, "members/")
	if !ok || m == "" || strings.Contains(m, "/") {
		return "", false
	}
	return m, true
}

// Diff returns the change bits that differ between two views (nil counts as
// an empty view). It is what a full reload reports besides ChangeReload.
func Diff(keys Keys, old, cur *Cluster) Change {
	if old == nil {
		old = &Cluster{}
	}
	if cur == nil {
		cur = &Cluster{}
	}
	var c Change
	set := func(bit Change, changed bool) {
		if changed {
			c |= bit
		}
	}
	set(ChangeLeader, !reflect.DeepEqual(old.Leader, cur.Leader))
	set(ChangeConfig, !reflect.DeepEqual(old.Config, cur.Config))
	set(ChangeMembers, !equalMaps(old.Members, cur.Members))
	set(ChangeStatus, !reflect.DeepEqual(old.Status, cur.Status))
	set(ChangeFailover, old.FailoverRev != cur.FailoverRev || old.Failover != cur.Failover)
	set(ChangeSync, old.SyncRev != cur.SyncRev || !reflect.DeepEqual(old.Sync, cur.Sync))
	set(ChangeHistory, !reflect.DeepEqual(old.History, cur.History))
	set(ChangeInitialize, !reflect.DeepEqual(old.Initialize, cur.Initialize))
	for name, v := range cur.Extra {
		if ov, ok := old.Extra[name]; !ok || !reflect.DeepEqual(ov, v) {
			c |= keys.Change(keys.Prefix() + name)
		}
	}
	for name := range old.Extra {
		if _, ok := cur.Extra[name]; !ok {
			c |= keys.Change(keys.Prefix() + name)
		}
	}
	return c
}

// equalMaps treats nil and empty maps as equal, unlike reflect.DeepEqual.
func equalMaps[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || reflect.DeepEqual(a, b)
}
