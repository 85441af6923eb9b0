package restapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a minimal ResponseWriter, so the benchmark measures the
// handler rather than httptest.ResponseRecorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchmarkHealth(b *testing.B, method, target string, want int) {
	s := New(Options{})
	snap := primarySnap()
	snap.LeaderUntil = snap.LeaderUntil.AddDate(100, 0, 0) // stays leader with the real clock
	snap.ViewFreshUntil = snap.ViewFreshUntil.AddDate(100, 0, 0)
	// As the agent publishes a leader: lease_remaining_ms written per request.
	snap.Status.Regent = &RegentStatus{Name: "pg1", LastDecision: "holding the lease"}
	snap.LeaseDeadline = snap.LeaderUntil
	s.Publish(snap)
	h := s.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(method, target, nil)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.code != want {
				b.Errorf("%s %s = %d, want %d", method, target, w.code, want)
				return
			}
		}
	})
}

func BenchmarkPrimary(b *testing.B)        { benchmarkHealth(b, http.MethodGet, "/primary", 200) }
func BenchmarkOptionsPrimary(b *testing.B) { benchmarkHealth(b, http.MethodOptions, "/primary", 200) }
func BenchmarkReplicaLagTags(b *testing.B) {
	benchmarkHealth(b, http.MethodGet, "/replica?lag=10MB&tag_dc=East", 503)
}
