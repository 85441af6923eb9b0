package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxSlotName is NAMEDATALEN - 1.
const maxSlotName = 63

// SlotName maps a member name to its physical replication slot name with
// Patroni's rule: lower-case; '-' and '.' become '_'; any other character
// outside [a-z0-9_] becomes 'u' + its 4-digit decimal code point; the
// result is truncated to 63 bytes. Two members whose names map to the same
// slot ("pg-1", "pg.1") collide.
func SlotName(member string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(member) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r == '-', r == '.':
			b.WriteByte('_')
		default:
			fmt.Fprintf(&b, "u%04d", r)
		}
	}
	s := b.String()
	if len(s) > maxSlotName {
		s = s[:maxSlotName]
	}
	return s
}

// EnsureSlots reads pg_replication_slots, plans with PlanSlots and
// applies the plan: it creates (physical ones reserving WAL at once),
// advances and drops slots, naming every slot it drops in a WARN with the
// ignore_slots entry that would have kept it. It returns the slots as they
// were read (the leader publishes their positions). Each statement is
// bounded by ctx; a logical slot is created over its own short connection
// to its database. A replica's copy of a logical slot that cannot be
// advanced because the WAL from its restart_lsn is gone here is reported,
// after the rest of the plan ran, as a *StaleCopiesError: it needs a
// fresh copy from the primary.
func (i *Instance) EnsureSlots(ctx context.Context, p SlotPolicy) ([]Slot, error) {
	p.Members = slices.DeleteFunc(slices.Clone(p.Members), func(m string) bool { return m == i.name })
	var have []Slot
	var stale []string // copies whose WAL is gone: not an SQL failure of the session
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		var err error
		if have, err = readSlots(ctx, conn); err != nil {
			return err
		}
		stale = nil
		plan := PlanSlots(p, have)
		for _, s := range plan.Drop {
			if err := i.dropSlot(ctx, conn, s); err != nil {
				return err
			}
		}
		for _, s := range plan.Create {
			err := i.createSlot(ctx, conn, s)
			switch {
			case err == nil:
			case isSQLError(err) && !slices.ContainsFunc(p.Members, func(m string) bool { return SlotName(m) == s.Name }):
				// A permanent slot PostgreSQL refuses (wal_level too low for
				// a logical one, an unknown plugin or database) must not
				// keep the members' slots, nor the leader's upkeep after
				// them, from going on: it is retried at the next pass.
				i.log.Warn("cannot create a permanent replication slot", "slot", s.Name, "slot_type", s.Type, "err", err)
			default:
				return err
			}
		}
		for _, s := range plan.Advance {
			err := i.advanceSlot(ctx, conn, s)
			switch {
			case hasCode(err, sqlstateUndefinedFile):
				stale = append(stale, s.Name)
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return have, fmt.Errorf("ensure slots: %w", err)
	}
	if len(stale) > 0 {
		return have, &StaleCopiesError{Names: stale}
	}
	return have, nil
}

func readSlots(ctx context.Context, conn *pgx.Conn) ([]Slot, error) {
	rows, err := conn.Query(ctx, `SELECT slot_name::text, slot_type, coalesce(database::text, ''),
		coalesce(plugin::text, ''), active,
		coalesce(CASE WHEN slot_type = 'logical' THEN confirmed_flush_lsn ELSE restart_lsn END - '0/0', 0)::bigint
		FROM pg_replication_slots`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Slot, error) {
		var s Slot
		var pos int64
		err := row.Scan(&s.Name, &s.Type, &s.Database, &s.Plugin, &s.Active, &pos)
		s.Position = LSN(pos)
		return s, err
	})
}

func (i *Instance) createSlot(ctx context.Context, conn *pgx.Conn, s Slot) error {
	var err error
	if s.Type == SlotLogical {
		err = i.createLogicalSlot(ctx, s)
	} else {
		_, err = conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", s.Name)
	}
	if hasCode(err, sqlstateDuplicateObject) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s slot %s: %w", s.Type, s.Name, err)
	}
	i.log.Info("created replication slot", "slot", s.Name, "slot_type", s.Type)
	return nil
}

// createLogicalSlot connects to the slot's database: a logical slot
// belongs to one database and is created from a session in it.
func (i *Instance) createLogicalSlot(ctx context.Context, s Slot) error {
	cfg, err := pgx.ParseConfig(i.ConnString())
	if err != nil {
		return err
	}
	cfg.Database = s.Database
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, $2)", s.Name, s.Plugin)
	return err
}

// advanceSlot moves a replica's copy of a permanent physical slot to the
// leader's position; PostgreSQL stops it at the replay position.
func (i *Instance) advanceSlot(ctx context.Context, conn *pgx.Conn, s Slot) error {
	_, err := conn.Exec(ctx, "SELECT pg_replication_slot_advance($1, $2::pg_lsn)", s.Name, s.Position.String())
	if hasCode(err, sqlstateUndefinedObject) || hasCode(err, sqlstateObjectInUse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("advance slot %s: %w", s.Name, err)
	}
	i.log.Debug("advanced a copy of the primary's slot", "slot", s.Name, "lsn", s.Position)
	return nil
}

func (i *Instance) dropSlot(ctx context.Context, conn *pgx.Conn, s Slot) error {
	// Patroni's default drops unknown slots (they would hold WAL for
	// ever); never silently: name the slot and the entry that keeps it.
	i.log.Warn("dropping an inactive replication slot this node does not keep (member slots live on the leader, permanent ones under slots); list it in ignore_slots to keep it",
		"slot", s.Name, "slot_type", s.Type, "ignore_slots_entry", KeepWith(s).String())
	_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", s.Name)
	if hasCode(err, sqlstateUndefinedObject) || hasCode(err, sqlstateObjectInUse) {
		return nil // gone already, or a replica just started using it
	}
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", s.Name, err)
	}
	return nil
}

// hasCode reports whether err is a PostgreSQL error with SQLSTATE code.
func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
