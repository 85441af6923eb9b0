package restapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// sseKeepAlive is the interval of the ": ping" comments: proxies close
	// streams idle for 30–60 s, and clients treat 45 s of silence (three
	// missed pings) as a dead connection.
	sseKeepAlive = 15 * time.Second
	// sseWriteTimeout bounds each write to the stream: a client that stops
	// reading must not hold the handler (and the watch) forever.
	sseWriteTimeout = 30 * time.Second
)

// SwitchoverEnd is the data of the final "end" event of a switchover's
// event stream: the terminal state and, when failed, the failure.
type SwitchoverEnd struct {
	State   string          `json:"state"`
	Failure json.RawMessage `json:"failure,omitempty"`
}

// switchoverEvents streams a switchover's events as Server-Sent Events:
// every event with seq above Last-Event-ID once, in seq order, then "end"
// when the record is terminal. The stream is only a reader of the record:
// a client going away cancels the watch, never the switchover.
func (s *Server) switchoverEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := s.switchoverID(w, r)
	if !ok {
		return
	}
	last, err := lastEventID(r)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.takeStream(w) {
		return
	}
	defer s.streams.Add(-1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	records, err := s.switchovers.WatchSwitchover(ctx, id)
	if err != nil {
		s.switchoverFailed(w, "watch", err)
		return
	}
	st := &sseStream{w: w, rc: http.NewResponseController(w), last: last}
	defer st.rc.SetWriteDeadline(time.Time{}) //nolint:errcheck // best effort: the connection may be gone
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := st.flush(); err != nil {
		return
	}
	if err := s.pump(ctx, st, records); err != nil {
		s.log.Debug("switchover event stream ended", "switchover_id", id, "err", err)
	}
}

// streamRetryAfter is the Retry-After of a refused stream: streams end
// with their switchover, so a slot frees within minutes at most.
const streamRetryAfter = "5"

// takeStream counts one more open stream, or answers 503 when
// restapi.max_streams are open already. The caller releases a taken slot.
func (s *Server) takeStream(w http.ResponseWriter) bool {
	if n := s.streams.Add(1); n > int64(s.cfg.MaxStreams) {
		s.streams.Add(-1)
		s.log.Warn("event stream refused: restapi.max_streams reached", "max_streams", s.cfg.MaxStreams)
		w.Header().Set("Retry-After", streamRetryAfter)
		WriteError(w, http.StatusServiceUnavailable, "too many event streams open",
			"restapi.max_streams is "+strconv.Itoa(s.cfg.MaxStreams))
		return false
	}
	return true
}

// pump copies record versions to the stream until the terminal one, the
// end of the watch or of the client.
func (s *Server) pump(ctx context.Context, st *sseStream, records <-chan json.RawMessage) error {
	ping := time.NewTicker(s.keepAlive)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ping.C:
			st.buf.WriteString(": ping\n\n")
			if err := st.flush(); err != nil {
				return err
			}
		case raw, ok := <-records:
			if !ok {
				return errors.New("watch closed before the switchover ended")
			}
			done, err := st.send(raw)
			if err != nil {
				if errors.Is(err, errBadRecord) {
					s.log.Warn("skipping an unreadable switchover record", "err", err)
					continue
				}
				return err
			}
			if done {
				return nil
			}
		}
	}
}

// lastEventID reads Last-Event-ID (header, else ?last_event_id=); 0 when
// absent.
func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("last event id (Last-Event-ID or ?last_event_id=) must be an event seq, a non-negative integer")
	}
	return n, nil
}

// errBadRecord: a record version that is not the expected JSON.
var errBadRecord = errors.New("switchover record is not valid JSON")

// sseStream writes one client's event stream; last is the highest seq
// sent, so that each event goes out once however often it is re-read.
type sseStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	buf  bytes.Buffer
	last int64
}

// streamRecord is what the stream reads from a record version.
type streamRecord struct {
	State   string            `json:"state"`
	Failure json.RawMessage   `json:"failure"`
	Events  []json.RawMessage `json:"events"`
}

// streamEvent is an event's addressing fields; the event itself is sent
// verbatim (compacted) as the data line.
type streamEvent struct {
	Seq  int64  `json:"seq"`
	Kind string `json:"kind"`
	raw  json.RawMessage
}

// send writes the events of one record version not sent yet and, when the
// record is terminal, the end event; done reports the latter.
func (st *sseStream) send(raw json.RawMessage) (done bool, err error) {
	var rec streamRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return false, errors.Join(errBadRecord, err)
	}
	var fresh []streamEvent
	for _, e := range rec.Events {
		var ev streamEvent
		if json.Unmarshal(e, &ev) != nil || ev.Seq <= st.last {
			continue
		}
		ev.raw = e
		fresh = append(fresh, ev)
	}
	slices.SortStableFunc(fresh, func(a, b streamEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, ev := range fresh {
		if ev.Seq <= st.last { // a duplicate seq within one version
			continue
		}
		st.event(strconv.FormatInt(ev.Seq, 10), ev.Kind, ev.raw)
		st.last = ev.Seq
	}
	terminal := rec.State != "" && rec.State != "running"
	if terminal {
		end := SwitchoverEnd{State: rec.State}
		if f := bytes.TrimSpace(rec.Failure); len(f) > 0 && !bytes.Equal(f, []byte("null")) {
			end.Failure = f
		}
		data, err := json.Marshal(end)
		if err != nil {
			return false, err
		}
		st.event("", "end", data)
	}
	if st.buf.Len() == 0 {
		return false, nil
	}
	return terminal, st.flush()
}

// event buffers one event; data is valid JSON, compacted onto one line.
func (st *sseStream) event(id, kind string, data []byte) {
	if id != "" {
		st.buf.WriteString("id: " + id + "\n")
	}
	if kind != "" && !strings.ContainsAny(kind, "\r\n") {
		st.buf.WriteString("event: " + kind + "\n")
	}
	st.buf.WriteString("data: ")
	if err := json.Compact(&st.buf, data); err != nil {
		st.buf.WriteString("{}") // cannot happen: data was decoded as JSON
	}
	st.buf.WriteString("\n\n")
}

// flush writes the buffered bytes, bounded by sseWriteTimeout, and
// flushes them to the client.
func (st *sseStream) flush() error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) // unsupported by httptest recorders
	if st.buf.Len() > 0 {
		_, err := st.w.Write(st.buf.Bytes())
		st.buf.Reset()
		if err != nil {
			return err
		}
	}
	return st.rc.Flush()
}
