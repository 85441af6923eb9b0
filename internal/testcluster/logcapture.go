package testcluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogCapture records the output lines of one node's agent (and the
// harness's own lines about that node), without the "[pgN] " prefix, from
// the moment it is created until the test ends. Lines still go to t.Logf.
type LogCapture struct {
	node   string
	prefix string
	mu     sync.Mutex
	lines  []string
}

// CaptureLog starts recording n's lines; recording stops at the test's
// cleanup. Lines logged before the call are not included.
func (n *Node) CaptureLog(t testing.TB) *LogCapture {
	t.Helper()
	lc := &LogCapture{node: n.Name, prefix: "[" + n.Name + "] "}
	t.Cleanup(n.c.log.tap(lc.take))
	return lc
}

func (lc *LogCapture) take(line string) {
	rest, ok := strings.CutPrefix(line, lc.prefix)
	if !ok {
		return
	}
	lc.mu.Lock()
	lc.lines = append(lc.lines, rest)
	lc.mu.Unlock()
}

// Lines returns the lines recorded so far.
func (lc *LogCapture) Lines() []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return slices.Clone(lc.lines)
}

// Matching returns the recorded lines for which match is true.
func (lc *LogCapture) Matching(match func(line string) bool) []string {
	var out []string
	for _, l := range lc.Lines() {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// Wait polls until a recorded line satisfies match and returns the first
// such line; it fails the test after timeout, naming what it waited for
// and the number of lines seen.
func (lc *LogCapture) Wait(t testing.TB, timeout time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	var found string
	Poll(t, timeout, fmt.Sprintf("a log line of %s: %s", lc.node, what), func(context.Context) error {
		lines := lc.Lines()
		for _, l := range lines {
			if match(l) {
				found = l
				return nil
			}
		}
		return fmt.Errorf("none among %d lines recorded", len(lines))
	})
	return found
}
