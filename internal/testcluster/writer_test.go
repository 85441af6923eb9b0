package testcluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgproto3"
)

// How a fake node answers an INSERT.
const (
	pgAccept     = iota // INSERT 0 1
	pgRefuse            // a read-only error, as a replica or a demoted primary
	pgSyncCancel        // success after a cancelled synchronous wait
)

// fakeNode is a node whose API answers GET /primary with 200 while
// primary is set, and whose "PostgreSQL" is a wire-protocol stand-in that
// answers each INSERT as mode says and counts them.
type fakeNode struct {
	*Node
	primary atomic.Bool
	mode    atomic.Int32
	inserts atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startFakeNode(t *testing.T, name string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/primary" && f.primary.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	f.Node = &Node{Name: name, PGPort: ln.Addr().(*net.TCPAddr).Port, APIURL: api.URL}
	f.wg.Go(func() { f.accept(ln) })
	t.Cleanup(func() {
		api.Close()
		_ = ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeNode) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.mu.Unlock()
		f.wg.Go(func() { f.serve(conn) })
	}
}

// serve speaks just enough of the protocol for pgx's connect and a
// prepared INSERT with two parameters (bigint, text).
func (f *fakeNode) serve(conn net.Conn) {
	defer conn.Close()
	b := pgproto3.NewBackend(conn, conn)
	if _, err := b.ReceiveStartupMessage(); err != nil {
		return
	}
	b.Send(&pgproto3.AuthenticationOk{})
	b.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}})
	b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	for b.Flush() == nil {
		msg, err := b.Receive()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Parse:
			b.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Describe:
			if m.ObjectType == 'S' {
				b.Send(&pgproto3.ParameterDescription{ParameterOIDs: []uint32{20, 25}})
			}
			b.Send(&pgproto3.NoData{})
		case *pgproto3.Bind:
			b.Send(&pgproto3.BindComplete{})
		case *pgproto3.Execute:
			f.execute(b)
		case *pgproto3.Sync:
			b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Terminate:
			return
		}
	}
}

func (f *fakeNode) execute(b *pgproto3.Backend) {
	switch f.mode.Load() {
	case pgRefuse:
		b.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "25006", Message: "cannot execute INSERT in a read-only transaction"})
		return
	case pgSyncCancel:
		b.Send(&pgproto3.NoticeResponse{Severity: "WARNING", Code: "01000", Message: "canceling wait for synchronous replication due to user request"})
	}
	f.inserts.Add(1)
	b.Send(&pgproto3.CommandComplete{CommandTag: []byte("INSERT 0 1")})
}

func startTestWriter(t *testing.T, route WriterRoute, nodes ...*fakeNode) *Writer {
	t.Helper()
	opts := WriterOptions{Table: "t", Route: route}
	for _, n := range nodes {
		opts.Nodes = append(opts.Nodes, n.Node)
	}
	w := (&Cluster{}).StartWriter(t.Context(), opts)
	t.Cleanup(w.Stop)
	return w
}

func waitAcked(t *testing.T, w *Writer, node string, since time.Time, n int) {
	t.Helper()
	if _, err := w.WaitAcked(t.Context(), node, since, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestWriterFollowsPrimaryEndpoint: the writer writes only where GET
// /primary answers 200, moves when a write fails and the endpoint moved,
// and records commits with a cancelled synchronous wait apart.
func TestWriterFollowsPrimaryEndpoint(t *testing.T) {
	pg1, pg2 := startFakeNode(t, "pg1"), startFakeNode(t, "pg2")
	pg2.primary.Store(true)
	w := startTestWriter(t, RoutePrimaryEndpoint, pg1, pg2)
	waitAcked(t, w, "pg2", time.Time{}, 20)
	if got := pg1.inserts.Load(); got != 0 {
		t.Errorf("%d inserts on pg1, whose /primary answers 503", got)
	}

	moved := time.Now()
	pg2.primary.Store(false)
	pg2.mode.Store(pgRefuse)
	pg1.primary.Store(true)
	pg1.mode.Store(pgSyncCancel)
	if err := poll(t.Context(), 10*time.Second, func(context.Context) error {
		if n := len(w.Snapshot().SyncCancelled); n < 5 {
			return errors.New("fewer than 5 sync-cancelled commits")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pg1.mode.Store(pgAccept)
	waitAcked(t, w, "pg1", moved, 20)
	w.Stop()

	s := w.Snapshot()
	if s.Errors == 0 || s.LastErr == nil || s.Dual != 0 {
		t.Errorf("errors %d (last %v), dual %d; want the refused insert counted, no dual", s.Errors, s.LastErr, s.Dual)
	}
	if acks := len(s.Acked) + len(s.SyncCancelled); s.Attempts != acks+s.Errors {
		t.Errorf("attempts %d, want acks %d + errors %d", s.Attempts, acks, s.Errors)
	}
	for _, a := range s.SyncCancelled {
		if a.Node != "pg1" || a.At.Before(moved) {
			t.Errorf("sync-cancelled commit %+v, want only pg1's after the move", a)
		}
	}
	// Every ack is an insert a node took; a node may also have taken one
	// whose answer the writer never saw (cut off by Stop, or refused after
	// the commit): those are errors, not acks.
	acks, taken := int64(len(s.Acked)+len(s.SyncCancelled)), pg1.inserts.Load()+pg2.inserts.Load()
	if taken < acks || taken > acks+int64(s.Errors) {
		t.Errorf("%d acks and %d errors recorded, the nodes took %d and %d inserts", acks, s.Errors, pg1.inserts.Load(), pg2.inserts.Load())
	}
	checkOrdered(t, s.Acked)
}

// TestWriterTryAllCountsDual: without a router the writer tries every
// node; two accepting the same id is counted as dual; it sticks to the
// node that accepted and moves when that one refuses.
func TestWriterTryAllCountsDual(t *testing.T) {
	pg1, pg2 := startFakeNode(t, "pg1"), startFakeNode(t, "pg2")
	w := startTestWriter(t, RouteTryAll, pg1, pg2)
	waitAcked(t, w, "pg1", time.Time{}, 20)
	if s := w.Snapshot(); s.Dual != 1 || pg2.inserts.Load() != 1 {
		t.Errorf("dual %d, %d inserts on pg2; want the first id on both, then only pg1 (sticky)", s.Dual, pg2.inserts.Load())
	}
	pg1.mode.Store(pgRefuse)
	moved := time.Now()
	waitAcked(t, w, "pg2", moved, 20)
	w.Stop()

	s := w.Snapshot()
	if s.Dual != 1 || s.Errors == 0 {
		t.Errorf("dual %d, errors %d; want 1 dual and the refused sticky insert counted", s.Dual, s.Errors)
	}
	if s.Acked[0].ID != 1 || s.Acked[1].ID != 1 {
		t.Errorf("first acks %s, want id 1 acknowledged twice", DescribeAcks(s.Acked, 3))
	}
	checkOrdered(t, s.Acked)
}

// TestWriterWaitAckedNamesTheFailure: with no node answering, WaitAcked
// fails in time and says why.
func TestWriterWaitAckedNamesTheFailure(t *testing.T) {
	pg1 := startFakeNode(t, "pg1")
	w := startTestWriter(t, RoutePrimaryEndpoint, pg1)
	_, err := w.WaitAcked(t.Context(), "", time.Time{}, 1, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), errNoRoute.Error()) || !strings.Contains(err.Error(), "any node") {
		t.Errorf("WaitAcked = %v, want a timeout naming %q", err, errNoRoute)
	}
}

func checkOrdered(t *testing.T, acks []Ack) {
	t.Helper()
	for i := 1; i < len(acks); i++ {
		if acks[i].At.Before(acks[i-1].At) || acks[i].ID < acks[i-1].ID {
			t.Fatalf("acks out of order at %d: %s", i, DescribeAcks(acks[i-1:i+1], 2))
		}
	}
}

func TestLongestGap(t *testing.T) {
	t0 := time.Now()
	acks := []Ack{{1, "pg1", t0}, {2, "pg1", t0.Add(10 * time.Millisecond)}, {5, "pg2", t0.Add(700 * time.Millisecond)}, {6, "pg2", t0.Add(710 * time.Millisecond)}}
	want := Gap{Duration: 690 * time.Millisecond, From: acks[1], To: acks[2]}
	if diff := cmp.Diff(want, LongestGap(acks)); diff != "" {
		t.Errorf("LongestGap (-want +got):\n%s", diff)
	}
	if g := LongestGap(acks[:1]); g != (Gap{}) {
		t.Errorf("LongestGap of one ack = %+v, want zero", g)
	}
}

func TestMissingAcksOncePerID(t *testing.T) {
	t0 := time.Now()
	acks := []Ack{{1, "pg1", t0}, {2, "pg1", t0}, {3, "pg1", t0}, {3, "pg2", t0}, {4, "pg2", t0}}
	want := []Ack{{2, "pg1", t0}, {3, "pg1", t0}}
	if diff := cmp.Diff(want, missingFrom(acks, []int64{4, 1, 99})); diff != "" {
		t.Errorf("missingFrom (-want +got):\n%s", diff)
	}
	if got := missingFrom(acks, []int64{1, 2, 3, 4}); got != nil {
		t.Errorf("missingFrom with every id present = %v", got)
	}
}

func TestDescribeAcks(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC)
	acks := []Ack{{1, "pg1", t0}, {2, "pg2", t0}, {3, "pg3", t0}}
	if got, want := DescribeAcks(acks, 2), "[1@pg1 03:04:05.006 2@pg2 03:04:05.006 … 1 more]"; got != want {
		t.Errorf("DescribeAcks = %q, want %q", got, want)
	}
	if got, want := DescribeAcks(acks[:1], 2), "[1@pg1 03:04:05.006]"; got != want {
		t.Errorf("DescribeAcks = %q, want %q", got, want)
	}
}
