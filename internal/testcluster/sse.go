package testcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
)

// Event is one Server-Sent Event as the server framed it.
type Event struct {
	// ID is this event's own "id:" field, "" when it had none (unlike a
	// browser's lastEventId, it does not carry over from earlier events).
	ID    string
	Event string // the "event:" field; "" for the default "message"
	Data  string // the "data:" lines, joined with "\n"
}

// EventStream reads one text/event-stream response. Next may be called
// from one goroutine at a time; Close from any.
type EventStream struct {
	events chan Event
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader goroutine has returned
	err    error         // why the stream ended; valid after done
	once   sync.Once
}

// OpenEvents GETs path on the node's API as an event stream, sending
// Last-Event-ID when lastEventID is not empty, and returns once the
// response headers arrived. It fails (with the body) unless the answer is
// 200 with Content-Type text/event-stream. ctx bounds the whole stream;
// Close it when done.
func (n *Node) OpenEvents(ctx context.Context, path, lastEventID string) (*EventStream, error) {
	return n.API().OpenEvents(ctx, path, lastEventID)
}

// OpenEvents opens an event stream (see Node.OpenEvents); a.Client's
// transport carries it (its timeout does not apply: a stream lives as
// long as ctx).
func (a API) OpenEvents(ctx context.Context, path, lastEventID string) (*EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s on %s: %w", path, a.Name, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	rt := http.DefaultTransport
	if a.Client != nil && a.Client.Transport != nil {
		rt = a.Client.Transport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s on %s: %w", path, a.Name, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		defer resp.Body.Close()
		defer cancel()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s on %s: status %d, Content-Type %q: %s", path, a.Name, resp.StatusCode, resp.Header.Get("Content-Type"), Compact(body))
	}
	s := &EventStream{events: make(chan Event), cancel: cancel, done: make(chan struct{})}
	go s.read(ctx, resp)
	return s, nil
}

// read runs beside the stream's user until the stream ends, then closes
// the body.
func (s *EventStream) read(ctx context.Context, resp *http.Response) {
	defer close(s.done)
	defer resp.Body.Close()
	s.err = readEvents(ctx, resp.Body, s.events)
}

// Next returns the next event. At the end of the stream it returns io.EOF
// when the server closed it cleanly (an unfinished event is dropped, as
// the SSE rules say), else the read error; ctx.Err() when ctx ends first.
func (s *EventStream) Next(ctx context.Context) (Event, error) {
	select {
	case e := <-s.events:
		return e, nil
	case <-s.done:
		return Event{}, s.err
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Close drops the connection (the client going away) and waits for the
// reader to stop. It is idempotent.
func (s *EventStream) Close() {
	s.once.Do(s.cancel)
	<-s.done
}

// readEvents parses the stream (WHATWG HTML §9.2.6: lines end with LF, CR
// LF or CR; ":" starts a comment; one space after the colon is dropped; a
// blank line dispatches an event with data) and sends each event on out.
func readEvents(ctx context.Context, r io.Reader, out chan<- Event) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(scanSSELines)
	var e Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				e.Data = strings.Join(data, "\n")
				select {
				case out <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			e, data = Event{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			e.ID = value
		case "event":
			e.Event = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return io.EOF
}

// scanSSELines is bufio.ScanLines for SSE: LF, CR LF or a lone CR end a
// line. A CR at the end of the buffer waits for the next byte.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i, b := range data {
		switch {
		case b == '\n':
			return i + 1, data[:i], nil
		case b == '\r' && i+1 < len(data):
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		case b == '\r' && atEOF:
			return i + 1, data[:i], nil
		case b == '\r':
			return 0, nil, nil // need the next byte
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// errStreamEnded: the stream ended without the awaited event.
var errStreamEnded = errors.New("stream ended before the awaited event")

// ReadUntil reads events until stop returns true for one and returns them
// all, that one included. When the stream or ctx ends first it returns
// the events read so far and an error saying why.
func (s *EventStream) ReadUntil(ctx context.Context, stop func(Event) bool) ([]Event, error) {
	var got []Event
	for {
		e, err := s.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamEnded
			}
			return got, fmt.Errorf("after %d events: %w", len(got), err)
		}
		got = append(got, e)
		if stop(e) {
			return got, nil
		}
	}
}
