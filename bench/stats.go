package bench

import (
	"math"
	"slices"
	"time"
)

// Summary is the median, minimum and maximum of N samples (N = 0: no
// sample; the other fields are then zero and meaningless).
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the summary of xs (the median of an even count is
// the mean of the two middle values).
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: s[0], Max: s[n-1]}
}

// summarizeOf summarizes the values f picks from samples, skipping the
// ones it reports absent.
func summarizeOf[T any](samples []T, f func(T) (float64, bool)) Summary {
	var xs []float64
	for _, s := range samples {
		if v, ok := f(s); ok {
			xs = append(xs, v)
		}
	}
	return Summarize(xs)
}

// percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
