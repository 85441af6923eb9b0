package restapi

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// errBadTimestamp: scheduled_at is not a timestamp we can read.
var errBadTimestamp = errors.New("unparsable timestamp")

// parseSchedule reads a scheduled_at value as leniently as Patroni's
// dateutil.parser.parse does for ISO-8601 shapes (patroni-compat.md §6
// item 11): a date (YYYY-MM-DD or YYYYMMDD), optionally followed by "T" or
// spaces and a time (HH, HH:MM, HH:MM:SS, HHMM, HHMMSS, with an optional
// "." or "," fraction), optionally followed by a zone (Z, UTC, GMT, ±HH,
// ±HHMM, ±HH:MM). Go's RFC 3339 parser rejects "2030-01-01T00:00+00",
// which patronictl users send. hasZone is false when no zone was given:
// the caller answers 400, as Patroni does. Every other problem is
// errBadTimestamp.
func parseSchedule(s string) (t time.Time, hasZone bool, err error) {
	p := &tsScanner{s: strings.TrimSpace(s)}
	year, month, day, ok := p.date()
	if !ok {
		return time.Time{}, false, errBadTimestamp
	}
	var hour, minute, sec, nsec int
	if p.timeSeparator() {
		if hour, minute, sec, nsec, ok = p.clock(); !ok {
			return time.Time{}, false, errBadTimestamp
		}
	}
	p.spaces()
	loc, hasZone, ok := p.zone()
	if !ok || p.i != len(p.s) {
		return time.Time{}, false, errBadTimestamp
	}
	if month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false, errBadTimestamp
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // 2030-02-30 normalises to March: not a date
		return time.Time{}, false, errBadTimestamp
	}
	return t, hasZone, nil
}

// tsScanner walks a timestamp string.
type tsScanner struct {
	s string
	i int
}

// digits consumes exactly n digits.
func (p *tsScanner) digits(n int) (int, bool) {
	if p.i+n > len(p.s) {
		return 0, false
	}
	v := 0
	for _, c := range p.s[p.i : p.i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v, true
}

// run counts the digits at the cursor without consuming them.
func (p *tsScanner) run() int {
	n := 0
	for p.i+n < len(p.s) && p.s[p.i+n] >= '0' && p.s[p.i+n] <= '9' {
		n++
	}
	return n
}

func (p *tsScanner) take(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *tsScanner) spaces() int {
	n := 0
	for p.take(' ') {
		n++
	}
	return n
}

// date reads YYYY-MM-DD or YYYYMMDD.
func (p *tsScanner) date() (year, month, day int, ok bool) {
	if p.run() == 8 {
		year, _ = p.digits(4)
		month, _ = p.digits(2)
		day, _ = p.digits(2)
		return year, month, day, true
	}
	if p.run() != 4 {
		return 0, 0, 0, false
	}
	year, _ = p.digits(4)
	if !p.take('-') || p.run() != 2 {
		return 0, 0, 0, false
	}
	month, _ = p.digits(2)
	if !p.take('-') || p.run() != 2 {
		return 0, 0, 0, false
	}
	day, _ = p.digits(2)
	return year, month, day, true
}

// timeSeparator consumes "T", "t" or spaces before a time; it reports
// whether a time follows.
func (p *tsScanner) timeSeparator() bool {
	start := p.i
	if !p.take('T') && !p.take('t') && p.spaces() == 0 {
		return false
	}
	if p.run() == 0 { // "2030-01-01 Z" or "2030-01-01 UTC": no time after all
		p.i = start
		return false
	}
	return true
}

// clock reads HH[:MM[:SS]][.frac] or HHMM[SS][.frac].
func (p *tsScanner) clock() (hour, minute, sec, nsec int, ok bool) {
	switch p.run() {
	case 2:
		hour, _ = p.digits(2)
		if p.take(':') {
			if minute, ok = p.digits(2); !ok {
				return 0, 0, 0, 0, false
			}
			if p.take(':') {
				if sec, ok = p.digits(2); !ok {
					return 0, 0, 0, 0, false
				}
			}
		}
	case 4:
		hour, _ = p.digits(2)
		minute, _ = p.digits(2)
	case 6:
		hour, _ = p.digits(2)
		minute, _ = p.digits(2)
		sec, _ = p.digits(2)
	default:
		return 0, 0, 0, 0, false
	}
	if p.take('.') || p.take(',') {
		n := p.run()
		if n == 0 {
			return 0, 0, 0, 0, false
		}
		frac := p.s[p.i : p.i+min(n, 9)]
		p.i += n // digits past nanoseconds are dropped, as dateutil drops past microseconds
		v, _ := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		nsec = v
	}
	return hour, minute, sec, nsec, true
}

// zone reads an optional zone; ok is false for a malformed one.
func (p *tsScanner) zone() (loc *time.Location, hasZone, ok bool) {
	rest := p.s[p.i:]
	switch {
	case rest == "":
		return time.UTC, false, true
	case rest == "Z" || rest == "z" || strings.EqualFold(rest, "UTC") || strings.EqualFold(rest, "GMT"):
		p.i = len(p.s)
		return time.UTC, true, true
	}
	sign := 1
	switch {
	case p.take('+'):
	case p.take('-'):
		sign = -1
	default:
		return nil, false, false
	}
	hh, ok := p.digits(2)
	if !ok {
		return nil, false, false
	}
	mm := 0
	if p.take(':') || p.run() == 2 {
		if mm, ok = p.digits(2); !ok {
			return nil, false, false
		}
	}
	if hh > 23 || mm > 59 {
		return nil, false, false
	}
	offset := sign * (hh*3600 + mm*60)
	if offset == 0 {
		return time.UTC, true, true
	}
	return time.FixedZone("", offset), true, true
}
