package progress

import (
	"fmt"
	"strings"
)

// Progress of a replica being created. Bytes are zero when the method
// does not report them (a user-defined command).
type Progress struct {
	// Work is what is in progress, e.g. "creating replica".
	Work string `json:"work"`
	// Method is the replica creation method running (basebackup, pgbackrest…).
	Method     string `json:"method,omitempty"`
	DoneBytes  int64  `json:"done_bytes,omitempty"`
	TotalBytes int64  `json:"total_bytes,omitempty"`
	// SecondsLeft estimates the time to the end at the average rate so
	// far; 0 when unknown.
	SecondsLeft int64 `json:"seconds_left,omitempty"`
}

// Percent is DoneBytes of TotalBytes in whole percent, or -1 when unknown.
func (p Progress) Percent() int {
	if p.TotalBytes <= 0 {
		return -1
	}
	return int(min(100, p.DoneBytes*100/p.TotalBytes))
}

// String is the human form: "creating replica 37%, 12 of 32 GB, 4 min
// left (basebackup)", or "creating replica (pgbackrest)" without numbers.
func (p Progress) String() string {
	var b strings.Builder
	b.WriteString(p.Work)
	if pct := p.Percent(); pct >= 0 {
		unit, div := "MB", float64(1<<20)
		if p.TotalBytes >= 1<<30 {
			unit, div = "GB", float64(1<<30)
		}
		prec := 0 // "12 of 32 GB", but "0.4 of 1.1 GB"
		if float64(p.TotalBytes)/div < 10 {
			prec = 1
		}
		fmt.Fprintf(&b, " %d%%, %.*f of %.*f %s", pct, prec, float64(p.DoneBytes)/div, prec, float64(p.TotalBytes)/div, unit)
	}
	switch left := p.SecondsLeft; {
	case left >= 60:
		fmt.Fprintf(&b, ", %d min left", (left+30)/60)
	case left > 0:
		fmt.Fprintf(&b, ", %d s left", left)
	}
	if p.Method != "" {
		fmt.Fprintf(&b, " (%s)", p.Method)
	}
	return b.String()
}
