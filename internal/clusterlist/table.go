package clusterlist

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Table is a boxed table like patronictl's: a title set into the top
// border, a header row, then the rows. Columns are as wide as their widest
// cell, counted in runes; Right marks the columns whose body cells are
// right-aligned (numbers).
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
	Right  map[int]bool
}

// Render writes the table to w.
func (t *Table) Render(w io.Writer) error {
	widths := make([]int, len(t.Header))
	for _, l := range append([][]string{t.Header}, t.Rows...) {
		for i, cell := range l {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	sep := "+"
	for _, wd := range widths {
		sep += strings.Repeat("-", wd+2) + "+"
	}
	top := sep
	if t.Title != "" && utf8.RuneCountInString(t.Title)+2 < len(sep) {
		top = "+" + t.Title + sep[utf8.RuneCountInString(t.Title)+1:]
	}
	var b strings.Builder
	b.WriteString(top + "\n")
	t.line(&b, t.Header, widths, false)
	b.WriteString(sep + "\n")
	for _, r := range t.Rows {
		t.line(&b, r, widths, true)
	}
	b.WriteString(sep + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (t *Table) line(b *strings.Builder, cells []string, widths []int, body bool) {
	b.WriteString("|")
	for i, cell := range cells {
		pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
		if body && t.Right[i] {
			b.WriteString(" " + pad + cell + " |")
		} else {
			b.WriteString(" " + cell + pad + " |")
		}
	}
	b.WriteString("\n")
}
