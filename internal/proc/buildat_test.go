package proc

import (
	"errors"
	"strings"
	"testing"
)

// TestBuildAtRefuses: BuildAt wants a full commit id, and says so when the
// commit is not in the clone's history instead of building something else.
func TestBuildAtRefuses(t *testing.T) {
	if _, err := BuildAt(t.Context(), "c8d2e75", "./cmd/regent", nil); err == nil || !strings.Contains(err.Error(), "40-digit") {
		t.Errorf("BuildAt of an abbreviated commit: %v, want a refusal naming the full form", err)
	}
	missing := strings.Repeat("0", 40)
	_, err := BuildAt(t.Context(), missing, "./cmd/regent", nil)
	if !errors.Is(err, ErrCommitMissing) || !strings.Contains(err.Error(), missing) {
		t.Errorf("BuildAt of a commit not in the history: %v, want ErrCommitMissing naming it", err)
	}
}
