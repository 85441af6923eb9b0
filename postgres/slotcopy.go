package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
)

// SlotState is a logical slot's on-disk state file
// (pg_replslot/<name>/state) as read from the primary.
type SlotState struct {
	Name  string
	State []byte
	// RestartLSN is where decoding the slot starts: the replica needs WAL
	// from there to use (or advance) the copy.
	RestartLSN LSN
}

// ReadSlotStates reads, from the primary up, the state files of the named
// logical slots (Patroni's copy_logical_slots): the only way a PostgreSQL
// 15 standby gets a logical slot, which it cannot create. A slot the
// primary lacks is left out; a standby answering is an error (its files
// would be stale copies).
func (i *Instance) ReadSlotStates(ctx context.Context, up Upstream, names []string) ([]SlotState, error) {
	conn, err := i.dialUpstream(ctx, up)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var primary bool
	if err := conn.QueryRow(ctx, "SELECT NOT pg_is_in_recovery()").Scan(&primary); err != nil {
		return nil, fmt.Errorf("read slot states from %s: %w", up.Member, err)
	}
	if !primary {
		return nil, fmt.Errorf("read slot states from %s: it is not a primary", up.Member)
	}
	rows, err := conn.Query(ctx, `SELECT slot_name::text, pg_read_binary_file('pg_replslot/' || slot_name || '/state'),
		coalesce(restart_lsn - '0/0', 0)::bigint
		FROM pg_replication_slots WHERE slot_type = 'logical' AND slot_name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("read slot states from %s: %w", up.Member, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SlotState, error) {
		var s SlotState
		var restart int64
		err := row.Scan(&s.Name, &s.State, &restart)
		s.RestartLSN = LSN(restart)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("read slot states from %s: %w", up.Member, err)
	}
	return out, nil
}

// InstallSlotStates writes slot state files into the stopped instance's
// pg_replslot, each directory and file synced, so PostgreSQL loads the
// slots at its next start. It refuses while PostgreSQL runs: a running
// server would neither see the files nor keep them.
func (i *Instance) InstallSlotStates(states []SlotState) error {
	if pid, err := i.PostmasterPID(); err == nil {
		return fmt.Errorf("install slot states: refused while PostgreSQL runs (pid %d)", pid)
	} else if !errors.Is(err, ErrNotRunning) {
		return fmt.Errorf("install slot states: %w", err)
	}
	for _, s := range states {
		if SlotName(s.Name) != s.Name || s.Name == "" {
			return fmt.Errorf("install slot state: %q is not a slot name", s.Name)
		}
		dir := filepath.Join(i.cfg.DataDir, "pg_replslot", s.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("install slot %s: %w", s.Name, err)
		}
		if err := i.chown(dir); err != nil {
			return fmt.Errorf("install slot %s: %w", s.Name, err)
		}
		if _, err := i.writeFileAtomic(filepath.Join(dir, "state"), s.State, 0o600); err != nil {
			return fmt.Errorf("install slot %s: %w", s.Name, err)
		}
		if err := errors.Join(syncPath(dir), syncPath(filepath.Dir(dir))); err != nil {
			return fmt.Errorf("install slot %s: %w", s.Name, err)
		}
		i.log.Info("installed a copy of the primary's logical slot", "slot", s.Name)
	}
	return nil
}

// syncPath fsyncs a directory, so a rename or a new entry in it survives
// a crash.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// OldestWAL is the start of the oldest WAL segment in pg_wal: a slot copy
// whose restart_lsn is older cannot be decoded (or advanced) here.
func (i *Instance) OldestWAL(ctx context.Context) (LSN, error) {
	var lsn int64
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT coalesce(min(('x' || substr(name, 9, 8))::bit(32)::bigint * 4294967296
			+ ('x' || substr(name, 17, 8))::bit(32)::bigint * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')), 0)
			FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'`).Scan(&lsn)
	})
	if err != nil {
		return 0, fmt.Errorf("oldest WAL: %w", err)
	}
	return LSN(lsn), nil
}

// StaleCopiesError names slot copies that cannot be advanced because the
// WAL from their restart_lsn is gone here: they must be copied again.
type StaleCopiesError struct{ Names []string }

func (e *StaleCopiesError) Error() string {
	return fmt.Sprintf("the WAL of slot copies %v is gone; they need a fresh copy", e.Names)
}
