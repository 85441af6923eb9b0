package clusterlist

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRenderShape pins the list table's shape, patronictl's: the title in
// the top border, numbers right-aligned in the body only, every border as
// wide as the rows.
func TestRenderShape(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, "demo", testView()); err != nil {
		t.Fatal(err)
	}
	want := `+ Cluster: demo (7218000000000000001) ---+---------+----+-----------+
| Member | Host           | Role         | State   | TL | Lag in MB |
+--------+----------------+--------------+---------+----+-----------+
| pg1    | 127.0.0.1:5432 | Leader       | running |  2 |           |
| pg2    | 127.0.0.1:5433 | Sync Standby | running |  2 |         2 |
| pg3    | 127.0.0.1:5434 | Replica      | stopped |    |   unknown |
+--------+----------------+--------------+---------+----+-----------+
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("Render (-want +got):\n%s", d)
	}
}

// TestTableCountsRunes: widths and the title are measured in runes, so a
// table with non-ASCII text keeps its columns and borders aligned.
func TestTableCountsRunes(t *testing.T) {
	var b bytes.Buffer
	tb := &Table{Title: " é ", Header: []string{"Näme", "N"}, Rows: [][]string{{"ü", "12"}}, Right: map[int]bool{1: true}}
	if err := tb.Render(&b); err != nil {
		t.Fatal(err)
	}
	want := `+ é ---+----+
| Näme | N  |
+------+----+
| ü    | 12 |
+------+----+
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("Render (-want +got):\n%s", d)
	}
}
