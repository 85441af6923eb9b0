package testcluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// openFake serves h and opens its /events stream, sending lastEventID;
// the stream, ctx (5 s) and the server end with the test.
func openFake(t *testing.T, lastEventID string, h http.HandlerFunc) (context.Context, *EventStream) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	n := &Node{Name: "fake", APIURL: srv.URL}
	s, err := n.OpenEvents(ctx, "/events", lastEventID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return ctx, s
}

func TestEventStreamParses(t *testing.T) {
	gotLast := make(chan string, 1)
	ctx, s := openFake(t, "7", func(w http.ResponseWriter, r *http.Request) {
		gotLast <- r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		_, _ = io.WriteString(w, ": ping\n\nid: 1\nevent: started\ndata: {\"seq\":1}\n\n"+
			"id:2\r\nevent: completed\r\ndata: a\r\ndata:  b\r\n\r\n"+
			"retry: 10\rdata: x\r\r"+ // lone CR line ends
			"event: end\ndata: {\"state\":\"completed\"}\n\n"+
			"id: 9\ndata: unfinished")
	})
	if last := <-gotLast; last != "7" {
		t.Errorf("Last-Event-ID sent = %q, want 7", last)
	}
	var got []Event
	for {
		e, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []Event{
		{ID: "1", Event: "started", Data: `{"seq":1}`},
		{ID: "2", Event: "completed", Data: "a\n b"},
		{Data: "x"},
		{Event: "end", Data: `{"state":"completed"}`},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func TestEventStreamRefusesNonStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"switchover not found"}`)
	}))
	defer srv.Close()
	n := &Node{Name: "fake", APIURL: srv.URL}
	if _, err := n.OpenEvents(t.Context(), "/events", ""); err == nil {
		t.Fatal("OpenEvents on a 404 JSON answer succeeded")
	}
}

func TestEventStreamReadUntilAndClose(t *testing.T) {
	ctx, s := openFake(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: 1\ndata: a\n\nid: 2\ndata: b\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the stream stays open until the client leaves
	})
	got, err := s.ReadUntil(ctx, func(e Event) bool { return e.ID == "2" })
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadUntil = %v, %v; want 2 events", got, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := s.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next on an idle stream = %v, want a deadline error", err)
	}
	s.Close()
	s.Close()
	if _, err := s.Next(ctx); err == nil {
		t.Error("Next after Close succeeded")
	}
}
