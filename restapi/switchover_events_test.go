package restapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// frame is one SSE event block as received ("" fields absent); a comment
// block has only comment set.
type frame struct{ id, event, data, comment string }

// frameText is the wire form of an event frame.
func frameText(id, event, data string) string {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\ndata: " + data + "\n\n")
	return b.String()
}

// eventFrame is the expected frame of testEvent(seq).
func eventFrame(seq int) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(testEvent(seq))); err != nil {
		panic(err)
	}
	kind := "completed"
	if seq%2 == 1 {
		kind = "started"
	}
	return frameText(fmt.Sprint(seq), kind, buf.String())
}

// versions is a watch that yields the given record versions, then closes.
func versions(vs ...json.RawMessage) func(context.Context, string) (<-chan json.RawMessage, error) {
	return func(context.Context, string) (<-chan json.RawMessage, error) {
		ch := make(chan json.RawMessage, len(vs))
		for _, v := range vs {
			ch <- v
		}
		close(ch)
		return ch, nil
	}
}

func TestSwitchoverEventsFraming(t *testing.T) {
	failure := `{"reason": "pg2 did not catch up within 30s", "hint": "check replication"}`
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: versions(
		testRecord("running", 2, ""),
		testRecord("running", 3, ""),
		testRecord("running", 3, ""), // an unchanged re-read sends nothing
		json.RawMessage(`{"id":`),    // an unreadable version is skipped
		testRecord("failed", 4, failure),
	)})
	r := do(t, ts.Handler(), "GET", "/switchover/20261122-030512-4f2a/events", nil)
	want := eventFrame(1) + eventFrame(2) + eventFrame(3) + eventFrame(4) +
		frameText("", "end", `{"state":"failed","failure":{"reason":"pg2 did not catch up within 30s","hint":"check replication"}}`)
	if r.code != 200 || r.body != want {
		t.Errorf("events = %d\n%s\nwant\n%s", r.code, r.body, want)
	}
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(ts.logs.String(), "skipping an unreadable switchover record") {
		t.Errorf("unreadable record not logged: %s", ts.logs)
	}
}

func TestSwitchoverEventsResumeAfterLastEventID(t *testing.T) {
	done := testRecord("completed", 4, "")
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: versions(testRecord("running", 2, ""), done)})
	end := frameText("", "end", `{"state":"completed"}`)
	for _, tc := range []struct {
		name, target, header string
		want                 string
	}{
		{"header", "/switchover/x/events", "2", eventFrame(3) + eventFrame(4) + end},
		{"query", "/switchover/x/events?last_event_id=3", "", eventFrame(4) + end},
		{"header wins", "/switchover/x/events?last_event_id=1", "3", eventFrame(4) + end},
		{"all seen", "/switchover/x/events", "4", end},
		{"beyond", "/switchover/x/events", "99", end},
		{"zero", "/switchover/x/events", "0", eventFrame(1) + eventFrame(2) + eventFrame(3) + eventFrame(4) + end},
	} {
		req := httptest.NewRequestWithContext(t.Context(), "GET", tc.target, nil)
		if tc.header != "" {
			req.Header.Set("Last-Event-ID", tc.header)
		}
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != tc.want {
			t.Errorf("%s: %d\n%s\nwant\n%s", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
	for _, bad := range []string{"abc", "-1", "1.5", "99999999999999999999"} {
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/switchover/x/events", nil)
		req.Header.Set("Last-Event-ID", bad)
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		if rec.Code != 400 {
			t.Errorf("Last-Event-ID %q = %d, want 400", bad, rec.Code)
		}
	}
}

// Events go out in seq order, once, whatever order the record lists them.
func TestSwitchoverEventsOrderAndDuplicates(t *testing.T) {
	rec := fmt.Sprintf(`{"state":"aborted","events":[%s,%s,%s,%s,{"stage":"X","kind":"info"},%s]}`,
		testEvent(2), testEvent(1), testEvent(3), testEvent(3), testEvent(1))
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: versions(json.RawMessage(rec))})
	r := do(t, ts.Handler(), "GET", "/switchover/x/events", nil)
	want := eventFrame(1) + eventFrame(2) + eventFrame(3) + frameText("", "end", `{"state":"aborted"}`)
	if r.body != want {
		t.Errorf("events\n%s\nwant\n%s", r.body, want)
	}
}

// A watch that ends before the switchover does ends the stream without
// "end": the client reconnects and resumes.
func TestSwitchoverEventsWatchEndsEarly(t *testing.T) {
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: versions(testRecord("running", 1, ""))})
	r := do(t, ts.Handler(), "GET", "/switchover/x/events", nil)
	if r.code != 200 || r.body != eventFrame(1) {
		t.Errorf("events = %d %q", r.code, r.body)
	}
}

func TestSwitchoverEventsWatchErrors(t *testing.T) {
	var err error
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: func(context.Context, string) (<-chan json.RawMessage, error) { return nil, err }})
	err = fmt.Errorf("watch: %w", ErrNotFound)
	if r := do(t, ts.Handler(), "GET", "/switchover/x/events", nil); r.code != 404 || errorOf(t, r).Error != "switchover not found" {
		t.Errorf("unknown switchover = %d %q", r.code, r.body)
	}
	err = errors.New("etcd unavailable")
	if r := do(t, ts.Handler(), "GET", "/switchover/x/events", nil); r.code != 503 || errorOf(t, r).Error != "watch switchover failed" {
		t.Errorf("watch failure = %d %q", r.code, r.body)
	}
}

// sseReader reads frames from a live stream.
type sseReader struct {
	t    *testing.T
	resp *http.Response
	br   *bufio.Reader
}

func openEvents(t *testing.T, ctx context.Context, url, lastID string) *sseReader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseReader{t: t, resp: resp, br: bufio.NewReader(resp.Body)}
}

// next reads one frame; io.EOF at the end of the stream.
func (s *sseReader) next() (frame, error) {
	var f frame
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return f, nil
		}
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			f.data = value
		case "":
			f.comment = value
		default:
			s.t.Errorf("unexpected line %q", line)
		}
	}
}

// nextEvent skips comments.
func (s *sseReader) nextEvent() frame {
	s.t.Helper()
	for {
		f, err := s.next()
		if err != nil {
			s.t.Fatalf("reading the stream: %v", err)
		}
		if f.comment == "" {
			return f
		}
	}
}

// waitDone fails the test unless ctx ends within a few seconds.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: context not cancelled", what)
	}
}

// Reconnecting with Last-Event-ID delivers every event exactly once, and a
// client that goes away cancels its watch but not the switchover.
func TestSwitchoverEventsReconnectExactlyOnce(t *testing.T) {
	f := newFeed(testRecord("running", 3, ""))
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: f.Watch})
	srv := httptest.NewServer(ts.Handler())
	defer srv.Close()
	url := srv.URL + "/switchover/20261122-030512-4f2a/events"

	seen := map[string]int{}
	ctx1, cancel1 := context.WithCancel(t.Context())
	s1 := openEvents(t, ctx1, url, "")
	watch1 := <-f.ctxs
	for range 3 {
		seen[s1.nextEvent().id]++
	}
	f.Set(testRecord("running", 5, ""))
	for range 2 {
		seen[s1.nextEvent().id]++
	}
	cancel1() // the client goes away mid-switchover
	waitDone(t, watch1, "the first watch after the client left")

	f.Set(testRecord("running", 7, ""))
	f.Set(testRecord("completed", 8, ""))
	s2 := openEvents(t, t.Context(), url, "5")
	for {
		fr, err := s2.next()
		if errors.Is(err, io.EOF) {
			t.Fatal("stream ended without the end event")
		}
		if err != nil {
			t.Fatal(err)
		}
		if fr.event == "end" {
			if fr.data != `{"state":"completed"}` {
				t.Errorf("end data = %s", fr.data)
			}
			break
		}
		seen[fr.id]++
	}
	if _, err := s2.next(); !errors.Is(err, io.EOF) {
		t.Errorf("after end: %v, want the stream closed", err)
	}
	for seq := 1; seq <= 8; seq++ {
		if n := seen[fmt.Sprint(seq)]; n != 1 {
			t.Errorf("event %d received %d times", seq, n)
		}
	}
	if len(seen) != 8 {
		t.Errorf("received %v", seen)
	}
}

// Comment pings keep an idle stream open; a disconnect during the wait
// ends the handler and its watch.
func TestSwitchoverEventsKeepAlive(t *testing.T) {
	f := newFeed(testRecord("running", 1, ""))
	ts := newSwitchoverServer(t, &fakeSwitchovers{watch: f.Watch})
	ts.keepAlive = 20 * time.Millisecond
	srv := httptest.NewServer(ts.Handler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	s := openEvents(t, ctx, srv.URL+"/switchover/x/events", "")
	watch := <-f.ctxs
	if fr := s.nextEvent(); fr.id != "1" {
		t.Fatalf("first event %+v", fr)
	}
	for pings := 0; pings < 3; {
		fr, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if fr.comment != "ping" || fr.id != "" || fr.data != "" {
			t.Fatalf("got %+v, want a ping comment", fr)
		}
		pings++
	}
	cancel()
	waitDone(t, watch, "the watch after the client left")
	waited := make(chan struct{})
	go func() { f.watchers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch goroutine did not end")
	}
}
