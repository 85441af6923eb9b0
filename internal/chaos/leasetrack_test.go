package chaos

import (
	"strings"
	"testing"
	"time"
)

func sec(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }

// held is a sample of node holding the key on lease id (granted ttl
// seconds) with left seconds to live, read at at seconds.
func held(at float64, node string, id int64, ttl, left int) leaseSample {
	return leaseSample{At: sec(at), Holder: node, Lease: id, Granted: sec(float64(ttl)), Bound: sec(at) + sec(float64(left))}
}

func blind(at float64) leaseSample { return leaseSample{At: sec(at), Blind: true} }
func gone(at float64) leaseSample  { return leaseSample{At: sec(at)} }

func TestLeaseBound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		samples   []leaseSample
		changes   []ttlChange
		bound     time.Duration
		ttl       time.Duration
		noteHas   string
		wantEmpty bool
	}{{
		name: "cut from etcd: the last renewal's sample is the bound",
		samples: []leaseSample{held(0, "pg1", 1, 10, 9), held(0.25, "pg1", 1, 10, 9), held(0.5, "pg1", 1, 10, 8),
			held(5, "pg1", 1, 10, 4), gone(9.6), held(12, "pg2", 2, 10, 9)},
		bound: sec(9.25), ttl: sec(10),
	}, {
		name: "rotated to a shorter lease: only the last lease counts",
		samples: []leaseSample{held(0, "pg1", 1, 10, 9), held(0.25, "pg1", 1, 10, 9),
			held(0.5, "pg1", 2, 7, 6), held(0.75, "pg1", 2, 7, 6), gone(7)},
		bound: sec(6.75), ttl: sec(7),
	}, {
		name:    "quorum lost: blind to the end, and a ttl change may have moved the key unseen",
		samples: []leaseSample{held(0, "pg1", 1, 10, 9), held(0.25, "pg1", 1, 10, 9), blind(0.5), blind(20)},
		changes: []ttlChange{{Sent: sec(0.1), TTL: sec(7)}},
		bound:   sec(7.1), ttl: sec(10), noteHas: "ttl change to 7s",
	}, {
		name:    "quorum lost after the rotation was seen: nothing unseen",
		samples: []leaseSample{held(0, "pg1", 1, 10, 9), held(0.25, "pg1", 2, 7, 6), blind(0.5), blind(20)},
		changes: []ttlChange{{Sent: sec(0.1), TTL: sec(7)}},
		bound:   sec(6.25), ttl: sec(7),
	}, {
		name: "blind for a while, then the leadership is seen to end: no conservative bound",
		samples: []leaseSample{held(0, "pg1", 1, 10, 9), blind(0.25), blind(3), held(4, "pg1", 1, 10, 9),
			held(4.25, "pg2", 3, 7, 6)},
		changes: []ttlChange{{Sent: sec(0.1), TTL: sec(7)}},
		bound:   sec(13), ttl: sec(10),
	}, {
		name:    "a longer ttl change bounds nothing sooner",
		samples: []leaseSample{held(0, "pg1", 1, 10, 9), blind(0.5)},
		changes: []ttlChange{{Sent: sec(0.1), TTL: sec(15)}},
		bound:   sec(9), ttl: sec(10),
	}, {
		name:      "never the holder",
		samples:   []leaseSample{held(0, "pg2", 1, 10, 9), gone(1)},
		wantEmpty: true,
	}, {
		name:    "the key first held by another (moved before the first sample), then by the node",
		samples: []leaseSample{held(0, "pg2", 1, 10, 9), held(1, "pg1", 4, 10, 9), gone(11)},
		bound:   sec(10), ttl: sec(10),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			bound, ttl, note := leaseBound(tc.samples, "pg1", tc.changes)
			if tc.wantEmpty {
				if bound != 0 {
					t.Fatalf("bound = %s, want 0", bound)
				}
				return
			}
			if bound != tc.bound || ttl != tc.ttl {
				t.Errorf("bound, ttl = %s, %s; want %s, %s", bound, ttl, tc.bound, tc.ttl)
			}
			if (tc.noteHas == "") != (note == "") || !strings.Contains(note, tc.noteHas) {
				t.Errorf("note = %q, want one containing %q", note, tc.noteHas)
			}
		})
	}
}
