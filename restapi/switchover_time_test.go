package restapi

import (
	"errors"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	cases := []struct {
		in       string
		want     time.Time // compared with Equal
		wantZone bool
		bad      bool
	}{
		{in: "2030-01-01T00:00:00+00:00", want: utc(2030, 1, 1, 0, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T00:00+00", want: utc(2030, 1, 1, 0, 0, 0, 0), wantZone: true},
		{in: "2030-01-01 00:00:00.123456+00:00", want: utc(2030, 1, 1, 0, 0, 0, 123456000), wantZone: true},
		{in: "2030-01-01T00:00:00Z", want: utc(2030, 1, 1, 0, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T00:00:00z", want: utc(2030, 1, 1, 0, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T12:30:15.5+02:00", want: utc(2030, 1, 1, 10, 30, 15, 500000000), wantZone: true},
		{in: "2030-01-01T12:30-0530", want: utc(2030, 1, 1, 18, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T12:30:00+0530", want: utc(2030, 1, 1, 7, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T12+01", want: utc(2030, 1, 1, 11, 0, 0, 0), wantZone: true},
		{in: "  2030-01-01   12:00 +00:00 ", want: utc(2030, 1, 1, 12, 0, 0, 0), wantZone: true},
		{in: "2030-01-01 12:00:00 UTC", want: utc(2030, 1, 1, 12, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T12:00:00GMT", want: utc(2030, 1, 1, 12, 0, 0, 0), wantZone: true},
		{in: "20300101T120000Z", want: utc(2030, 1, 1, 12, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T1200+00", want: utc(2030, 1, 1, 12, 0, 0, 0), wantZone: true},
		{in: "2030-01-01T12:00:00,25+00:00", want: utc(2030, 1, 1, 12, 0, 0, 250000000), wantZone: true},
		{in: "2030-01-01T12:00:00.1234567891+00:00", want: utc(2030, 1, 1, 12, 0, 0, 123456789), wantZone: true},
		{in: "2030-01-01Z", want: utc(2030, 1, 1, 0, 0, 0, 0), wantZone: true},
		{in: "2024-02-29T00:00+00", want: utc(2024, 2, 29, 0, 0, 0, 0), wantZone: true},
		// No zone: parsed, and the caller answers 400.
		{in: "2030-01-01T00:00:00", want: utc(2030, 1, 1, 0, 0, 0, 0)},
		{in: "2030-01-01 00:00", want: utc(2030, 1, 1, 0, 0, 0, 0)},
		{in: "2030-01-01", want: utc(2030, 1, 1, 0, 0, 0, 0)},
		// Unparsable: 422.
		{in: "", bad: true},
		{in: "tomorrow", bad: true},
		{in: "now", bad: true},
		{in: "2030-13-01T00:00+00", bad: true},
		{in: "2030-02-30T00:00+00", bad: true},
		{in: "2023-02-29T00:00+00", bad: true},
		{in: "2030-01-01T24:00+00", bad: true},
		{in: "2030-01-01T12:60+00", bad: true},
		{in: "2030-01-01T12:00:61+00", bad: true},
		{in: "2030-01-01T12:00+25", bad: true},
		{in: "2030-01-01T12:00+01:75", bad: true},
		{in: "2030-01-01T12:00+1", bad: true},
		{in: "2030-01-01T12:00:00.+00", bad: true},
		{in: "2030-01-01T12:00 PST8PDT", bad: true},
		{in: "2030-1-1T12:00+00", bad: true},
		{in: "2030-01-01T1:00+00", bad: true},
		{in: "2030-01-01T12:0+00", bad: true},
		{in: "2030-01-01T", bad: true},
		{in: "2030-01-01T12:00+00 junk", bad: true},
		{in: "1700000000", bad: true},
		{in: "2030/01/01 12:00+00", bad: true},
	}
	for _, tc := range cases {
		got, hasZone, err := parseSchedule(tc.in)
		if tc.bad {
			if !errors.Is(err, errBadTimestamp) {
				t.Errorf("parseSchedule(%q) = %v, %v, %v; want errBadTimestamp", tc.in, got, hasZone, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) || hasZone != tc.wantZone {
			t.Errorf("parseSchedule(%q) = %v, zone %v, %v; want %v, zone %v", tc.in, got, hasZone, err, tc.want, tc.wantZone)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"2030-01-01T00:00+00", "2030-01-01 00:00:00.123456+00:00", "20300101T1200Z", "2030-01-01T12:00:00,5-05:30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _, err := parseSchedule(s) // must never panic
		if err == nil && got.IsZero() {
			t.Errorf("parseSchedule(%q) = zero time without error", s)
		}
	})
}
