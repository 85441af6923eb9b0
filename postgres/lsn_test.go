package postgres

import "testing"

func TestLSNRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		text string
		lsn  LSN
	}{
		{"0/0", 0},
		{"0/16B3748", 0x16B3748},
		{"16/B374D848", 0x16_B374D848},
		{"FFFFFFFF/FFFFFFFF", ^LSN(0)},
	} {
		got, err := ParseLSN(tc.text)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", tc.text, err)
		}
		if got != tc.lsn {
			t.Errorf("ParseLSN(%q) = %#x, want %#x", tc.text, uint64(got), uint64(tc.lsn))
		}
		if s := got.String(); s != tc.text {
			t.Errorf("%#x.String() = %q, want %q", uint64(got), s, tc.text)
		}
	}
	// Lower-case hex and surrounding space parse too.
	if l, err := ParseLSN(" 16/b374d848\n"); err != nil || l != 0x16_B374D848 {
		t.Errorf("ParseLSN lower-case = %v, %v", l, err)
	}
}

func TestParseLSNRejectsBadInput(t *testing.T) {
	for _, bad := range []string{"", "0", "/", "0/", "/0", "G/0", "0/G", "1/2/3", "100000000/0", "0/100000000", "-1/0"} {
		if l, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) = %v, want an error", bad, l)
		}
	}
}

func TestLSNComparesNumerically(t *testing.T) {
	a, _ := ParseLSN("0/9000000")
	b, _ := ParseLSN("0/10000000")
	if a >= b {
		t.Errorf("0/9000000 should be < 0/10000000 (string order says otherwise)")
	}
}
