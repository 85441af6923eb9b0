package testcluster

import (
	"strings"
	"testing"
	"time"
)

func TestLogCaptureKeepsOneNodesLines(t *testing.T) {
	c := &Cluster{log: &testLog{t: t}}
	pg1 := &Node{Name: "pg1", c: c}
	c.log.logf("[pg1] %s", "before the capture")
	lc := pg1.CaptureLog(t)
	w := &lineWriter{log: c.log, prefix: "[pg1]"}
	_, _ = w.Write([]byte("level=WARN msg=one\nlevel=INFO "))
	c.log.logf("[pg2] level=WARN msg=other node")
	c.log.logf("[pg10] level=WARN msg=prefix of another node")
	_, _ = w.Write([]byte("msg=two\n"))

	want := []string{"level=WARN msg=one", "level=INFO msg=two"}
	if got := lc.Lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Lines() = %q, want %q", got, want)
	}
	warn := func(l string) bool { return strings.Contains(l, "level=WARN") }
	if got := lc.Matching(warn); len(got) != 1 || got[0] != "level=WARN msg=one" {
		t.Errorf("Matching(WARN) = %q", got)
	}
	if got := lc.Wait(t, time.Second, "an INFO line", func(l string) bool { return strings.HasPrefix(l, "level=INFO") }); got != "level=INFO msg=two" {
		t.Errorf("Wait = %q", got)
	}
}

func TestLogCaptureStopsAtRemove(t *testing.T) {
	l := &testLog{t: t}
	var got []string
	remove := l.tap(func(line string) { got = append(got, line) })
	l.logf("a %d", 1)
	remove()
	l.logf("b")
	if len(got) != 1 || got[0] != "a 1" {
		t.Errorf("tap got %q, want [\"a 1\"]", got)
	}
}
