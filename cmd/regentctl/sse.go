package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	// streamIdle: the agents send a ": ping" comment every 15 s, so 45 s
	// without a byte (three missed pings) means the connection is dead
	// even if TCP has not noticed.
	streamIdle = 45 * time.Second
	// reconnectBudget bounds how long a watch keeps reconnecting without
	// ever getting a stream: long enough to ride out the leader change in
	// the middle of a switchover, short enough not to hang a script.
	reconnectBudget = 2 * time.Minute
	backoffMin      = 250 * time.Millisecond
	backoffMax      = 5 * time.Second
	maxFrameBytes   = 1 << 20 // one event's data; the agents send far less
)

// sseFrame is one dispatched Server-Sent Event.
type sseFrame struct {
	id, event string
	data      []byte
}

// readFrames parses an event stream (the WHATWG format the agents write:
// "field: value" lines, blank line to dispatch, ":" comments) and calls fn
// for each event. It returns fn's error, or the reader's (io.EOF at the
// end of the stream).
func readFrames(r io.Reader, fn func(sseFrame) error) error {
	br := bufio.NewReaderSize(r, 4096)
	var f sseFrame
	var data bytes.Buffer
	hasData := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return errFatal{errors.New("event stream line too long")}
		}
		if err != nil {
			return err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 { // dispatch
			if hasData {
				f.data = bytes.Clone(data.Bytes())
				if err := fn(f); err != nil {
					return err
				}
			}
			f, hasData = sseFrame{}, false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue // keep-alive comment
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			f.id = string(value)
		case "event":
			f.event = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			if data.Len()+len(value) > maxFrameBytes {
				return errFatal{errors.New("event stream frame too large")}
			}
			data.Write(value)
			hasData = true
		}
	}
}

// idleReader cancels the stream when no byte arrives for idle, and
// counts what arrived.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
	n     int64
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.idle)
		ir.n += int64(n)
	}
	return n, err
}

// watcher follows one switchover's event stream to its end, reconnecting
// with backoff and resuming from the last event seen, so each event is
// delivered exactly once even across dropped connections.
type watcher struct {
	api     *apiClient
	id      string
	last    int64         // highest seq delivered
	idle    time.Duration // streamIdle
	budget  time.Duration // reconnectBudget
	onEvent func(stageEvent)
	onNote  func(string)
	now     func() time.Time
}

// errFatal marks an answer that reconnecting cannot change (404, 400).
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// run follows the stream until its end event, a fatal answer, ctx, or
// budget without getting a stream.
func (w *watcher) run(ctx context.Context) (endEvent, error) {
	lastStream := w.now()
	backoff := backoffMin
	base := 0
	for {
		end, progressed, err := w.attempt(ctx, w.api.bases[base%len(w.api.bases)])
		if err == nil {
			return end, nil
		}
		if ctx.Err() != nil {
			return endEvent{}, ctx.Err()
		}
		var fatal errFatal
		if errors.As(err, &fatal) {
			return endEvent{}, fatal.err
		}
		if progressed {
			lastStream, backoff = w.now(), backoffMin
		} else {
			base++ // that member may be down: try the next
		}
		if w.now().Sub(lastStream) > w.budget {
			return endEvent{}, fmt.Errorf("lost the event stream of switchover %s for %s: %w", w.id, w.budget, err)
		}
		w.onNote(fmt.Sprintf("event stream interrupted (%v); reconnecting in %s", err, backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return endEvent{}, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// errStreamClosed: the server ended the stream before the end event.
var errStreamClosed = errors.New("stream closed before the switchover ended")

// attempt reads one connection's stream; progressed reports that bytes of
// it arrived (events or keep-alives), so the connection was worth having.
func (w *watcher) attempt(ctx context.Context, base string) (end endEvent, progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/switchover/"+url.PathEscape(w.id)+"/events", nil)
	if err != nil {
		return endEvent{}, false, errFatal{err}
	}
	req.Header.Set("Accept", "text/event-stream")
	if w.last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(w.last, 10))
	}
	resp, err := w.api.http.Do(req) // connect and headers bounded by the transport
	if err != nil {
		return endEvent{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := responseError(resp)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return endEvent{}, false, errFatal{err}
		}
		return endEvent{}, false, err
	}
	var idled atomic.Bool
	timer := time.AfterFunc(w.idle, func() { idled.Store(true); cancel() })
	defer timer.Stop()
	body := &idleReader{r: resp.Body, timer: timer, idle: w.idle}
	errEnd := errors.New("end")
	err = readFrames(body, func(f sseFrame) error {
		if f.event == "end" {
			if err := json.Unmarshal(f.data, &end); err != nil {
				return errFatal{fmt.Errorf("unreadable end event: %w", err)}
			}
			return errEnd
		}
		return w.deliver(f)
	})
	progressed = body.n > 0
	switch {
	case errors.Is(err, errEnd):
		return end, true, nil
	case idled.Load():
		return endEvent{}, progressed, fmt.Errorf("no data for %s", w.idle)
	case errors.Is(err, io.EOF):
		return endEvent{}, progressed, errStreamClosed
	}
	return endEvent{}, progressed, err
}

// deliver passes on an event not seen yet. A malformed event is fatal: the
// server would send it again on every reconnect.
func (w *watcher) deliver(f sseFrame) error {
	seq, err := strconv.ParseInt(f.id, 10, 64)
	if err != nil {
		return errFatal{fmt.Errorf("event without a valid id %q", f.id)}
	}
	if seq <= w.last {
		return nil // a server that replays: seen already
	}
	var e stageEvent
	if err := json.Unmarshal(f.data, &e); err != nil {
		return errFatal{fmt.Errorf("unreadable event %d: %w", seq, err)}
	}
	w.last = seq
	w.onEvent(e)
	return nil
}
