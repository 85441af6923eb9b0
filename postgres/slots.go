package postgres

import (
	"context"
	"errors"
	"fmt"
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

// EnsureSlots, on a primary, creates a physical slot SlotName(m) for each
// member (except this one) that lacks one, reserving WAL at once, and drops
// inactive physical slots that no member expects. Logical slots and active
// slots are never dropped.
func (i *Instance) EnsureSlots(ctx context.Context, members []string) error {
	want := map[string]bool{}
	for _, m := range members {
		if m != i.name {
			want[SlotName(m)] = true
		}
	}
	err := i.withConn(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, "SELECT slot_name::text, active FROM pg_replication_slots WHERE slot_type = 'physical'")
		if err != nil {
			return err
		}
		have := map[string]bool{} // slot name → active
		for rows.Next() {
			var name string
			var active bool
			if err := rows.Scan(&name, &active); err != nil {
				return err
			}
			have[name] = active
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for name, active := range have {
			if want[name] || active {
				continue
			}
			if err := i.dropSlot(ctx, conn, name); err != nil {
				return err
			}
		}
		for name := range want {
			if _, ok := have[name]; ok {
				continue
			}
			if err := i.createSlot(ctx, conn, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ensure slots: %w", err)
	}
	return nil
}

func (i *Instance) createSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", name)
	if hasCode(err, sqlstateDuplicateObject) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create slot %s: %w", name, err)
	}
	i.log.Info("created replication slot", "slot", name)
	return nil
}

func (i *Instance) dropSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name)
	if hasCode(err, sqlstateUndefinedObject) || hasCode(err, sqlstateObjectInUse) {
		return nil // gone already, or a replica just started using it
	}
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", name, err)
	}
	i.log.Info("dropped replication slot", "slot", name)
	return nil
}

// hasCode reports whether err is a PostgreSQL error with SQLSTATE code.
func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
