package postgres

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Cluster states as pg_controldata prints them (LC_ALL=C): the clean
// shutdown states WALEnd tells apart, and the two a crashed primary or
// standby leaves behind. Other states ("in crash recovery", "shutting
// down", "starting up") need no name: every state but the two shut-down
// ones counts as unclean.
const (
	StateInProduction       = "in production"
	StateShutDown           = "shut down"
	StateShutDownInRecovery = "shut down in recovery"
	StateInArchiveRecovery  = "in archive recovery"
)

// ControlData is the part of pg_controldata's output Regent uses.
type ControlData struct {
	SystemID               uint64
	State                  string // "in production", "shut down", "shut down in recovery", ...
	Timeline               uint32 // latest checkpoint's TimeLineID
	CheckpointLSN          LSN    // latest checkpoint location (start of the record)
	RedoLSN                LSN    // latest checkpoint's REDO location
	MinRecoveryEndLSN      LSN    // minimum recovery ending location (0 unless a standby)
	MinRecoveryEndTimeline uint32 // its timeline (0 unless a standby)
	// PrimarySettings are the settings a standby must not run below, as
	// the primary last recorded them in pg_control (GUC name → value).
	PrimarySettings map[string]int64
}

// controlSettings maps pg_controldata's labels to the GUCs a standby must
// set at least as high as the primary.
var controlSettings = map[string]string{
	"max_connections setting":      "max_connections",
	"max_worker_processes setting": "max_worker_processes",
	"max_wal_senders setting":      "max_wal_senders",
	"max_prepared_xacts setting":   "max_prepared_transactions",
	"max_locks_per_xact setting":   "max_locks_per_transaction",
}

// WALEnd estimates where the local WAL ends on a stopped server, in the
// form NeedsRewind takes (the first byte past the last local record):
//
//   - shut down in recovery (a standby): the minimum recovery point and its
//     timeline, exact: data files hold nothing past it;
//   - shut down (a primary, or a standby that was promoted): the shutdown
//     checkpoint's location + 1 on its timeline — the checkpoint record
//     starts there and is the last record, so anything from that point on
//     is local WAL;
//
// clean is false for any other state (a crash): WAL may go past the last
// checkpoint and only recovery can tell how far, so the caller should treat
// a timeline mismatch as divergence (pg_rewind runs crash recovery itself).
func (c ControlData) WALEnd() (timeline uint32, end LSN, clean bool) {
	if c.State == StateShutDownInRecovery && c.MinRecoveryEndTimeline != 0 && c.MinRecoveryEndLSN != 0 {
		return c.MinRecoveryEndTimeline, c.MinRecoveryEndLSN, true
	}
	clean = c.State == StateShutDown || c.State == StateShutDownInRecovery
	return c.Timeline, c.CheckpointLSN + 1, clean
}

// ControlData runs pg_controldata on data_dir (LC_ALL=C) and parses it.
// It works whether or not the server runs.
func (i *Instance) ControlData(ctx context.Context) (ControlData, error) {
	out, err := i.run(ctx, []string{"LC_ALL=C", "LANG=C"}, "pg_controldata", "-D", i.cfg.DataDir)
	if err != nil {
		return ControlData{}, fmt.Errorf("control data: %w", err)
	}
	cd, err := ParseControlData(out)
	if err != nil {
		return ControlData{}, fmt.Errorf("control data: %w", err)
	}
	return cd, nil
}

// ParseControlData parses pg_controldata's "Key: value" output (LC_ALL=C).
func ParseControlData(text string) (ControlData, error) {
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var cd ControlData
	var errs []string
	need := func(key string) string {
		v, ok := fields[key]
		if !ok {
			errs = append(errs, fmt.Sprintf("missing %q", key))
		}
		return v
	}
	num := func(key string, bits int) uint64 {
		v := need(key)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", key, err))
		}
		return n
	}
	lsn := func(key string) LSN {
		v := need(key)
		if v == "" {
			return 0
		}
		l, err := ParseLSN(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", key, err))
		}
		return l
	}
	cd.SystemID = num("Database system identifier", 64)
	cd.State = need("Database cluster state")
	cd.Timeline = uint32(num("Latest checkpoint's TimeLineID", 32))
	cd.CheckpointLSN = lsn("Latest checkpoint location")
	cd.RedoLSN = lsn("Latest checkpoint's REDO location")
	cd.MinRecoveryEndLSN = lsn("Minimum recovery ending location")
	cd.MinRecoveryEndTimeline = uint32(num("Min recovery ending loc's timeline", 32))
	for label, guc := range controlSettings {
		if v, err := strconv.ParseInt(fields[label], 10, 64); err == nil {
			if cd.PrimarySettings == nil {
				cd.PrimarySettings = map[string]int64{}
			}
			cd.PrimarySettings[guc] = v
		}
	}
	if len(errs) > 0 {
		return ControlData{}, fmt.Errorf("parse pg_controldata output: %s", strings.Join(errs, "; "))
	}
	return cd, nil
}
