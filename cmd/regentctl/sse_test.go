package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/regent-ha/regent/switchover"
)

func TestReadFrames(t *testing.T) {
	stream := ": ping\n\n" +
		"id: 1\nevent: started\ndata: {\"seq\":1}\n\n" +
		"id: 2\r\nevent: info\r\ndata: line one\r\ndata:line two\r\n\r\n" +
		"retry: 1000\n\n" + // no data: not dispatched
		"data\n\n" + // a field without a colon: empty data
		"event: end\ndata: {\"state\":\"completed\"}\n\n" +
		"id: 9\ndata: never dispatched"
	var got []sseFrame
	err := readFrames(strings.NewReader(stream), func(f sseFrame) error { got = append(got, f); return nil })
	if !errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want EOF", err)
	}
	want := []sseFrame{
		{id: "1", event: "started", data: []byte(`{"seq":1}`)},
		{id: "2", event: "info", data: []byte("line one\nline two")},
		{data: []byte{}},
		{event: "end", data: []byte(`{"state":"completed"}`)},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(sseFrame{}), cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); d != "" {
		t.Errorf("frames (-want +got):\n%s", d)
	}
	stop := errors.New("stop")
	if err := readFrames(strings.NewReader(stream), func(sseFrame) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error = %v, want it returned", err)
	}
}

// eventJSON is the data of event seq of a run (stages alternate
// started/completed).
func eventJSON(seq int64) string {
	stages := switchover.StageNames()
	stage := stages[int((seq-1)/2)%len(stages)]
	kind := "started"
	if seq%2 == 0 {
		kind = "completed"
	}
	return fmt.Sprintf(`{"seq":%d,"stage":%q,"kind":%q,"at":"2026-11-22T03:05:12Z","duration_ms":%d}`, seq, stage, kind, seq)
}

// writeEvent writes one event frame.
func writeEvent(w io.Writer, seq int64) {
	kind := "started"
	if seq%2 == 0 {
		kind = "completed"
	}
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", seq, kind, eventJSON(seq))
}

// streamServer serves /switchover/<id>/events with script(conn, lastID, w),
// conn counting from 1; it records each request's Last-Event-ID.
type streamServer struct {
	*httptest.Server
	lastIDs recorder[string]
}

func newStreamServer(t *testing.T, script func(conn int, last int64, w http.ResponseWriter, r *http.Request)) *streamServer {
	t.Helper()
	s := &streamServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/switchover/20261122-030512-4f2a/events" {
			http.Error(w, `{"error":"switchover not found"}`, 404)
			return
		}
		conn := s.lastIDs.add(r.Header.Get("Last-Event-ID"))
		last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		script(conn, last, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *streamServer) seen() []string { return s.lastIDs.all() }

// testWatcher follows id on bases, collecting seqs and notes.
func testWatcher(bases []string) (*watcher, *[]int64, *[]string) {
	var seqs []int64
	var notes []string
	w := &watcher{
		api: newAPIClient(bases, 2*time.Second), id: "20261122-030512-4f2a",
		idle: 5 * time.Second, budget: 5 * time.Second, now: time.Now,
		onEvent: func(e stageEvent) { seqs = append(seqs, e.Seq) },
		onNote:  func(n string) { notes = append(notes, n) },
	}
	return w, &seqs, &notes
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// A connection dropped in the middle of an event resumes from the last
// complete one; a server that replays older events does not duplicate them.
func TestWatcherResumesWithoutDuplicates(t *testing.T) {
	srv := newStreamServer(t, func(conn int, last int64, w http.ResponseWriter, _ *http.Request) {
		switch conn {
		case 1:
			for seq := int64(1); seq <= 3; seq++ {
				writeEvent(w, seq)
			}
			io.WriteString(w, "id: 4\nevent: completed\ndata: {\"seq\":4,\"sta") // cut mid-event
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection
		default:
			for seq := last - 1; seq <= 7; seq++ { // replays one event too many
				writeEvent(w, seq)
			}
			io.WriteString(w, "event: end\ndata: {\"state\":\"completed\"}\n\n")
		}
	})
	w, seqs, notes := testWatcher([]string{srv.URL})
	end, err := w.run(t.Context())
	if err != nil || end.State != "completed" {
		t.Fatalf("run = %+v, %v", end, err)
	}
	if d := cmp.Diff(seqRange(1, 7), *seqs); d != "" {
		t.Errorf("events delivered (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"", "3"}, srv.seen()); d != "" {
		t.Errorf("Last-Event-ID per connection (-want +got):\n%s", d)
	}
	if len(*notes) != 1 || !strings.Contains((*notes)[0], "reconnecting") {
		t.Errorf("notes = %q", *notes)
	}
}

// A connection that stays open but sends nothing (not even keep-alives) is
// dropped after the idle bound and resumed.
func TestWatcherDetectsDeadConnection(t *testing.T) {
	srv := newStreamServer(t, func(conn int, last int64, w http.ResponseWriter, r *http.Request) {
		if conn == 1 {
			writeEvent(w, 1)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // silent until the client gives up
			return
		}
		for seq := last + 1; seq <= 14; seq++ {
			writeEvent(w, seq)
		}
		io.WriteString(w, "event: end\ndata: {\"state\":\"failed\",\"failure\":{\"reason\":\"r\",\"hint\":\"h\"}}\n\n")
	})
	w, seqs, notes := testWatcher([]string{srv.URL})
	w.idle = 300 * time.Millisecond
	end, err := w.run(t.Context())
	if err != nil || end.State != "failed" || end.Failure == nil || end.Failure.Hint != "h" {
		t.Fatalf("run = %+v, %v", end, err)
	}
	if d := cmp.Diff(seqRange(1, 14), *seqs); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if len(*notes) != 1 || !strings.Contains((*notes)[0], "no data for 300ms") {
		t.Errorf("notes = %q", *notes)
	}
}

// Keep-alive comments keep a slow stream alive: no reconnect.
func TestWatcherKeepAliveIsNotIdle(t *testing.T) {
	srv := newStreamServer(t, func(_ int, _ int64, w http.ResponseWriter, _ *http.Request) {
		writeEvent(w, 1)
		for range 6 {
			io.WriteString(w, ": ping\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond) // a slow server's pacing (the test is about gaps), not a wait for an event
		}
		writeEvent(w, 2)
		io.WriteString(w, "event: end\ndata: {\"state\":\"completed\"}\n\n")
	})
	w, seqs, notes := testWatcher([]string{srv.URL})
	w.idle = 400 * time.Millisecond // shorter than the stream, longer than a ping gap
	if end, err := w.run(t.Context()); err != nil || end.State != "completed" {
		t.Fatalf("run = %+v, %v", end, err)
	}
	if len(*notes) != 0 || len(*seqs) != 2 || len(srv.seen()) != 1 {
		t.Errorf("notes %q, seqs %v, connections %d", *notes, *seqs, len(srv.seen()))
	}
}

// deadAddr is the URL of a server that is gone: nothing listens there.
func deadAddr() string {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// A member that cannot be reached is skipped for the next one.
func TestWatcherMovesToAnotherMember(t *testing.T) {
	srv := newStreamServer(t, func(_ int, _ int64, w http.ResponseWriter, _ *http.Request) {
		writeEvent(w, 1)
		io.WriteString(w, "event: end\ndata: {\"state\":\"aborted\"}\n\n")
	})
	w, seqs, _ := testWatcher([]string{deadAddr(), srv.URL})
	if end, err := w.run(t.Context()); err != nil || end.State != "aborted" || len(*seqs) != 1 {
		t.Fatalf("run = %+v, %v, seqs %v", end, err, *seqs)
	}
}

func TestWatcherStops(t *testing.T) {
	t.Run("404 is final", func(t *testing.T) {
		srv := newStreamServer(t, nil)
		w, _, notes := testWatcher([]string{srv.URL})
		w.id = "unknown"
		_, err := w.run(t.Context())
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != 404 || len(*notes) != 0 {
			t.Errorf("run = %v (notes %q), want a 404 at once", err, *notes)
		}
	})
	t.Run("gives up after the budget", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"switchover not available"}`, http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		w, _, notes := testWatcher([]string{srv.URL})
		w.budget = 600 * time.Millisecond
		start := time.Now()
		_, err := w.run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "lost the event stream") || !strings.Contains(err.Error(), "switchover not available") {
			t.Errorf("run = %v", err)
		}
		if el := time.Since(start); el > 5*time.Second || len(*notes) < 2 {
			t.Errorf("gave up after %v and %d retries", el, len(*notes))
		}
	})
	t.Run("malformed event is final", func(t *testing.T) {
		srv := newStreamServer(t, func(_ int, _ int64, w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "id: x\ndata: {}\n\n")
		})
		w, _, _ := testWatcher([]string{srv.URL})
		if _, err := w.run(t.Context()); err == nil || !strings.Contains(err.Error(), "valid id") {
			t.Errorf("run = %v", err)
		}
	})
	t.Run("ctx ends the watch", func(t *testing.T) {
		srv := newStreamServer(t, func(_ int, _ int64, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		w, _, _ := testWatcher([]string{srv.URL})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		if _, err := w.run(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("run = %v, want the ctx error", err)
		}
	})
}

func TestEndEventDecoding(t *testing.T) {
	var e endEvent
	if err := json.Unmarshal([]byte(`{"state":"failed","failure":{"reason":"r","hint":"h"}}`), &e); err != nil || e.Failure.Reason != "r" {
		t.Errorf("%+v %v", e, err)
	}
}
