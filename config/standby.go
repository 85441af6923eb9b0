package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/regent-ha/regent/internal/lenient"
	"github.com/regent-ha/regent/postgres"
)

// StandbyCluster is `standby_cluster` (Patroni's key): when active, the
// cluster is a standby cluster whose leader — the standby leader —
// replicates from a remote PostgreSQL (Host:Port, usually an address that
// moves with the remote cluster's primary: HAProxy or a VIP) or from the
// archive (RestoreCommand), and never leaves recovery. docs/disaster-recovery.md.
type StandbyCluster struct {
	Host string
	Port int
	// PrimarySlotName is the slot on the remote primary the standby leader
	// streams through ("" streams without a slot).
	PrimarySlotName string
	// RestoreCommand fetches WAL from the remote cluster's archive.
	RestoreCommand string
	// CreateReplicaMethods are the methods that create the standby
	// leader's copy of the remote cluster (default basebackup); a member
	// runs those of them its postgres section defines.
	CreateReplicaMethods []string
}

// DefaultStandbyPort is the remote port when standby_cluster.host is set
// without one (PostgreSQL's default).
const DefaultStandbyPort = 5432

// standbyKeys are the keys of standby_cluster Regent implements.
var standbyKeys = []string{"host", "port", "primary_slot_name", "restore_command", "create_replica_methods"}

// standbyCluster parses `standby_cluster`. An empty object (or one whose
// values are all empty) is off: nil. Each error names its subkey.
func standbyCluster(v any) (*StandbyCluster, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be an object {host, port, primary_slot_name, restore_command, create_replica_methods}")
	}
	var sc StandbyCluster
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] == nil {
			continue
		}
		if err := sc.set(k, m[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if sc.Host == "" && sc.RestoreCommand == "" {
		if sc.Port != 0 || sc.PrimarySlotName != "" || len(sc.CreateReplicaMethods) > 0 {
			return nil, errors.New("host: required (or restore_command) when other standby_cluster keys are set")
		}
		return nil, nil
	}
	if sc.Host != "" && sc.Port == 0 {
		sc.Port = DefaultStandbyPort
	}
	return &sc, nil
}

func (sc *StandbyCluster) set(k string, v any) error {
	switch k {
	case "host":
		return assign(&sc.Host)(singleLine(v))
	case "port":
		n, err := lenient.Integer(v)
		if err == nil && (n < 1 || n > 65535) {
			return fmt.Errorf("%d is outside 1 .. 65535", n)
		}
		sc.Port = int(n)
		return err
	case "primary_slot_name":
		s, err := singleLine(v)
		if err == nil && s != "" && postgres.SlotName(s) != s {
			return errors.New("a slot name has only a-z, 0-9 and _ and at most 63 bytes")
		}
		sc.PrimarySlotName = s
		return err
	case "restore_command":
		return assign(&sc.RestoreCommand)(singleLine(v))
	case "create_replica_methods":
		return assign(&sc.CreateReplicaMethods)(methodNames(v))
	}
	return unknownKey(k, standbyKeys)
}

func singleLine(v any) (string, error) {
	s, ok := v.(string)
	switch {
	case !ok:
		return "", errors.New("must be a string")
	case strings.ContainsAny(s, "\r\n\x00"):
		return "", errors.New("must be a single line")
	}
	return strings.TrimSpace(s), nil
}

func methodNames(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, errors.New("must be a list of method names")
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, err := singleLine(e)
		if err == nil && s == "" {
			err = errors.New("is empty")
		}
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Active reports whether the cluster is a standby cluster.
func (sc *StandbyCluster) Active() bool {
	return sc != nil && (sc.Host != "" || sc.RestoreCommand != "")
}

// Upstream is the remote the standby leader replicates from.
func (sc *StandbyCluster) Upstream() *postgres.Upstream {
	if !sc.Active() {
		return nil
	}
	return &postgres.Upstream{Member: "standby_cluster", Host: sc.Host, Port: sc.Port, Remote: true,
		Slot: sc.PrimarySlotName, RestoreCommand: sc.RestoreCommand, Methods: sc.CreateReplicaMethods}
}
