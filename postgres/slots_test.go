package postgres

import (
	"strings"
	"testing"
)

func TestSlotName(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, tc := range []struct{ member, want string }{
		{"pg1", "pg1"},
		{"pg-1", "pg_1"},
		{"pg.1", "pg_1"},
		{"PG_Node", "pg_node"},
		{"node@host", "nodeu0064host"},
		{"db é", "dbu0032u0233"},
		{"漢", "u28450"},
		{long, strings.Repeat("a", 63)},
		{strings.Repeat("x", 60) + "-@y", strings.Repeat("x", 60) + "_u0"},
	} {
		if got := SlotName(tc.member); got != tc.want {
			t.Errorf("SlotName(%q) = %q, want %q", tc.member, got, tc.want)
		}
		if got := SlotName(tc.member); len(got) > 63 {
			t.Errorf("SlotName(%q) is %d bytes long", tc.member, len(got))
		}
	}
}
