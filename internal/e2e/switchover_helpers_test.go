package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testcluster"
)

// Bounds of the switchover tests.
const (
	// switchoverWait bounds a whole switchover: the default
	// switchover_timeout (30 s) covers quiesce and catch-up; promotion,
	// repointing and validation take a few loop_waits more.
	switchoverWait = 45 * time.Second
	// stageWait bounds the wait for one stage to start.
	stageWait = 20 * time.Second
	// unavailabilityBound: a planned switchover must not keep writes away
	// longer than a crash failover may (ttl + rtoSlack with ttl 10 s).
	unavailabilityBound = 15 * time.Second
)

// switchoverStages are the stages, in order (DESIGN §5).
var switchoverStages = []string{
	"PRE_FLIGHT_CHECKS", "QUIESCE_WRITES", "WAIT_FOR_REPLICATION_CATCHUP", "PROMOTE_STANDBY",
	"REPOINT_CLIENT_TRAFFIC", "POST_SWITCHOVER_VALIDATION", "CLEANUP",
}

const (
	stageQuiesce = "QUIESCE_WRITES"
	stageCatchUp = "WAIT_FOR_REPLICATION_CATCHUP"
	stagePromote = "PROMOTE_STANDBY"
)

// switchoverRecord is the record JSON (GET /switchover/<id>), as an
// operator's tool reads it.
type switchoverRecord struct {
	ID          string            `json:"id"`
	From        string            `json:"from"`
	To          string            `json:"to"`
	Reason      string            `json:"reason"`
	RequestedBy string            `json:"requested_by"`
	Timeout     string            `json:"timeout"`
	Stage       string            `json:"stage"`
	State       string            `json:"state"`
	Events      []switchoverEvent `json:"events"`
	// StandbyCluster: a standby cluster's switchover (its standby
	// leader's role moved; docs/disaster-recovery.md).
	StandbyCluster bool `json:"standby_cluster"`
	Failure        *struct {
		Reason string `json:"reason"`
		Hint   string `json:"hint"`
	} `json:"failure"`
	raw []byte
}

// switchoverEvent is one event of a record (and the data of an SSE event).
type switchoverEvent struct {
	Seq        int       `json:"seq"`
	Stage      string    `json:"stage"`
	Kind       string    `json:"kind"`
	At         time.Time `json:"at"`
	DurationMs *int64    `json:"duration_ms"`
	Message    string    `json:"message"`
}

func (r switchoverRecord) String() string { return string(r.raw) }

// started reports whether the record has a started event for stage.
func (r switchoverRecord) started(stage string) bool {
	return slices.ContainsFunc(r.Events, func(e switchoverEvent) bool { return e.Stage == stage && e.Kind == "started" })
}

// switchoverReq is the body of PATCH /switchover.
type switchoverReq struct {
	To      string `json:"to,omitempty"`
	Reason  string `json:"reason,omitempty"`
	DryRun  bool   `json:"dry_run,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// refusal is the body of a refused PATCH /switchover (409, 412).
type refusal struct {
	Error    string `json:"error"`
	ID       string `json:"id"`
	Rejected []struct {
		Member  string   `json:"member"`
		OK      bool     `json:"ok"`
		Reasons []string `json:"reasons"`
	} `json:"rejected"`
	Reasons []string `json:"reasons"`
}

// reasonsOf returns the rejection reasons of member.
func (r refusal) reasonsOf(member string) []string {
	for _, v := range r.Rejected {
		if v.Member == member {
			return v.Reasons
		}
	}
	return nil
}

// patchSwitchover sends PATCH /switchover to n, bounded by 15 s.
func patchSwitchover(t *testing.T, n *testcluster.Node, req switchoverReq) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	code, body, err := n.Do(ctx, http.MethodPatch, "/switchover", req)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// startSwitchover sends PATCH /switchover to n, expects 202 with an id and
// its events URL, and returns the id.
func startSwitchover(t *testing.T, n *testcluster.Node, req switchoverReq) string {
	t.Helper()
	code, body := patchSwitchover(t, n, req)
	if code != http.StatusAccepted {
		t.Fatalf("PATCH /switchover %+v on %s = %d %s, want 202", req, n.Name, code, body)
	}
	var started struct {
		ID     string `json:"id"`
		Events string `json:"events"`
	}
	if err := json.Unmarshal(body, &started); err != nil || started.ID == "" {
		t.Fatalf("PATCH /switchover on %s: 202 body %s: want {\"id\", \"events\"} (err %v)", n.Name, body, err)
	}
	if want := "/switchover/" + started.ID + "/events"; started.Events != want {
		t.Errorf("PATCH /switchover: events = %q, want %q", started.Events, want)
	}
	t.Logf("switchover %s started on %s: %s", started.ID, n.Name, strings.TrimSpace(string(body)))
	return started.ID
}

// getRecord reads GET /switchover/<id> on n.
func getRecord(ctx context.Context, n *testcluster.Node, id string) (switchoverRecord, error) {
	var r switchoverRecord
	body, err := getJSON(ctx, n.API(), "/switchover/"+id, &r)
	if err != nil {
		return switchoverRecord{}, err
	}
	r.raw = body
	return r, nil
}

// waitRecord polls the record on n until cond accepts it, and returns it.
func waitRecord(t *testing.T, n *testcluster.Node, id string, timeout time.Duration, what string, cond func(switchoverRecord) error) switchoverRecord {
	t.Helper()
	var rec switchoverRecord
	testcluster.Poll(t, timeout, "switchover "+id+": "+what, func(ctx context.Context) error {
		r, err := getRecord(ctx, n, id)
		if err != nil {
			return err
		}
		if err := cond(r); err != nil {
			return fmt.Errorf("%w; record %s", err, r)
		}
		rec = r
		return nil
	})
	return rec
}

// inStage accepts a running record whose current stage is stage.
func inStage(stage string) func(switchoverRecord) error {
	return func(r switchoverRecord) error {
		if r.State != "running" || r.Stage != stage || !r.started(stage) {
			return fmt.Errorf("state %s, stage %s", r.State, r.Stage)
		}
		return nil
	}
}

// closed accepts a record that is no longer running.
func closed(r switchoverRecord) error {
	if r.State == "running" || r.State == "" {
		return fmt.Errorf("state %q at %s", r.State, r.Stage)
	}
	return nil
}

// listSwitchovers reads GET /switchovers on n.
func listSwitchovers(ctx context.Context, n *testcluster.Node) ([]switchoverRecord, []byte, error) {
	var rs []switchoverRecord
	body, err := getJSON(ctx, n.API(), "/switchovers", &rs)
	if err != nil {
		return nil, body, err
	}
	return rs, body, nil
}

// checkSeqs checks that events carry seq 1..len(events) in order.
func checkSeqs(events []switchoverEvent) error {
	for i, e := range events {
		if e.Seq != i+1 {
			return fmt.Errorf("event %d has seq %d, want %d", i, e.Seq, i+1)
		}
	}
	return nil
}

// checkStages checks a completed switchover's events: every stage in
// order, each with a started event followed (before the next stage
// starts) by a completed event carrying duration_ms; no failed event.
func checkStages(events []switchoverEvent) error {
	var errs []error
	next := 0  // index in switchoverStages of the next stage to start
	open := "" // the stage started and not completed yet
	for _, e := range events {
		switch e.Kind {
		case "failed":
			errs = append(errs, fmt.Errorf("seq %d: %s failed: %s", e.Seq, e.Stage, e.Message))
		case "started":
			if open != "" {
				errs = append(errs, fmt.Errorf("seq %d: %s started before %s completed", e.Seq, e.Stage, open))
			}
			if next >= len(switchoverStages) || e.Stage != switchoverStages[next] {
				errs = append(errs, fmt.Errorf("seq %d: %s started, want %s next", e.Seq, e.Stage, stageName(next)))
			}
			open = e.Stage
			next++
		case "completed":
			switch {
			case e.Stage != open:
				errs = append(errs, fmt.Errorf("seq %d: %s completed, but the open stage is %q", e.Seq, e.Stage, open))
			case e.DurationMs == nil:
				errs = append(errs, fmt.Errorf("seq %d: %s completed without duration_ms", e.Seq, e.Stage))
			case *e.DurationMs < 0:
				errs = append(errs, fmt.Errorf("seq %d: %s completed with duration_ms %d", e.Seq, e.Stage, *e.DurationMs))
			}
			open = ""
		}
	}
	if next < len(switchoverStages) {
		errs = append(errs, fmt.Errorf("stages started: %d of %d (missing %v)", next, len(switchoverStages), switchoverStages[next:]))
	}
	if open != "" {
		errs = append(errs, fmt.Errorf("stage %s started but never completed", open))
	}
	return errors.Join(errs...)
}

func stageName(i int) string {
	if i < len(switchoverStages) {
		return switchoverStages[i]
	}
	return "no stage"
}

// stageDurations renders each completed stage's duration_ms.
func stageDurations(events []switchoverEvent) string {
	var parts []string
	for _, e := range events {
		if e.Kind == "completed" && e.DurationMs != nil {
			parts = append(parts, fmt.Sprintf("%s %dms", e.Stage, *e.DurationMs))
		}
	}
	return strings.Join(parts, ", ")
}

// sseEvent is one switchover event as received on the event stream.
type sseEvent struct {
	ID    string
	Kind  string // the SSE event name: the event's kind, or "end"
	Event switchoverEvent
	End   struct {
		State   string          `json:"state"`
		Failure json.RawMessage `json:"failure"`
	}
}

// decodeSSE checks and decodes one SSE event of a switchover stream: a
// switchover event has id = its seq and event = its kind; "end" carries
// the terminal state.
func decodeSSE(e testcluster.Event) (sseEvent, error) {
	s := sseEvent{ID: e.ID, Kind: e.Event}
	if e.Event == "end" {
		if err := json.Unmarshal([]byte(e.Data), &s.End); err != nil {
			return s, fmt.Errorf("end event data %q: %w", e.Data, err)
		}
		return s, nil
	}
	if err := json.Unmarshal([]byte(e.Data), &s.Event); err != nil {
		return s, fmt.Errorf("event data %q: %w", e.Data, err)
	}
	if e.ID != strconv.Itoa(s.Event.Seq) || e.Event != s.Event.Kind {
		return s, fmt.Errorf("event id %q / event %q do not match its data %s", e.ID, e.Event, e.Data)
	}
	return s, nil
}

// readStream reads a switchover's event stream until stop accepts an
// event (or "end" arrives when stop is nil), bounded by timeout, and
// returns the decoded events.
func readStream(t *testing.T, s *testcluster.EventStream, timeout time.Duration, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var out []sseEvent
	var bad error
	_, err := s.ReadUntil(ctx, func(e testcluster.Event) bool {
		d, err := decodeSSE(e)
		if err != nil && bad == nil {
			bad = err
		}
		out = append(out, d)
		if stop == nil {
			return d.Kind == "end"
		}
		return stop(d)
	})
	if bad != nil {
		t.Errorf("event stream: %v", bad)
	}
	if err != nil {
		t.Fatalf("event stream: %v; received %s", err, describeStream(out))
	}
	return out
}

// describeStream renders received events for a failure message.
func describeStream(events []sseEvent) string {
	var parts []string
	for _, e := range events {
		if e.Kind == "end" {
			parts = append(parts, "end("+e.End.State+")")
			continue
		}
		parts = append(parts, fmt.Sprintf("%d:%s/%s", e.Event.Seq, e.Event.Stage, e.Kind))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// streamEvents returns the switchover events of a stream, "end" excluded.
func streamEvents(events []sseEvent) []switchoverEvent {
	var out []switchoverEvent
	for _, e := range events {
		if e.Kind != "end" {
			out = append(out, e.Event)
		}
	}
	return out
}

// leaderRevision returns the leader key's value and CreateRevision: a
// leader that kept its lease keeps the revision.
func leaderRevision(t *testing.T, c *testcluster.Cluster) (string, int64) {
	t.Helper()
	resp := getKey(t, c, c.Keys().Leader())
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].CreateRevision
}

// waitHealthyForSwitchover waits for a healthy cluster whose leader also
// publishes every other member as streaming in its GET /patroni: the
// pre-flight checks read that document, which the leader refreshes once
// per loop_wait, so it may lag pg_stat_replication (what WaitHealthy
// reads) by up to a second.
func waitHealthyForSwitchover(t *testing.T, c *testcluster.Cluster) *testcluster.Node {
	t.Helper()
	leader := c.WaitHealthy(t, bootstrapTimeout)
	testcluster.Poll(t, replicateTimeout, leader.Name+"'s GET /patroni listing every replica as streaming", func(ctx context.Context) error {
		var names []string
		for _, n := range c.Others(leader.Name) {
			if !n.Running() {
				return fmt.Errorf("the agent of %s is not running (it exited: see its log)", n.Name)
			}
			names = append(names, n.Name)
		}
		return listedStreaming(ctx, leader, names...)
	})
	return leader
}

// listedStreaming checks that leader's GET /patroni lists every one of
// names as a streaming WAL sender.
func listedStreaming(ctx context.Context, leader *testcluster.Node, names ...string) error {
	var doc struct {
		Replication []walSender `json:"replication"`
	}
	if _, err := getJSON(ctx, leader.API(), "/patroni", &doc); err != nil {
		return err
	}
	for _, name := range names {
		if !slices.Contains(doc.Replication, walSender{ApplicationName: name, State: "streaming"}) {
			return fmt.Errorf("%s not listed as streaming: %+v", name, doc.Replication)
		}
	}
	return nil
}

// walSender is an entry of GET /patroni's "replication" list.
type walSender struct {
	ApplicationName string `json:"application_name"`
	State           string `json:"state"`
}

// closeWait bounds closing a connection whose server may be frozen.
const closeWait = 500 * time.Millisecond

// startWriter starts the load writer of the switchover tests on table (id
// bigint PRIMARY KEY, node text): a row every 10 ms on whichever node
// answers GET /primary with 200, each try bounded by 500 ms on the client
// and the server (testcluster's defaults).
func startWriter(t *testing.T, c *testcluster.Cluster, table string) *testcluster.Writer {
	return runWriter(t, c, testcluster.WriterOptions{Table: table, AppName: "e2e-writer", ServerTimeout: true})
}

// startLoaded starts a cluster ready for a switchover (see
// waitHealthyForSwitchover) and the load writer on table, and returns the
// cluster, its leader and the writer once the leader has acknowledged 50
// writes.
func startLoaded(t *testing.T, table string) (*testcluster.Cluster, *testcluster.Node, *testcluster.Writer) {
	t.Helper()
	c := testcluster.New(t, testcluster.Options{})
	old := waitHealthyForSwitchover(t, c)
	mustExec(t, old, fmt.Sprintf(createLoadTable, table))
	w := startWriter(t, c, table)
	waitAcked(t, w, old.Name, time.Time{}, 50, replicateTimeout)
	return c, old, w
}

// runWriter starts a writer that stops at the test's end at the latest.
func runWriter(t *testing.T, c *testcluster.Cluster, opts testcluster.WriterOptions) *testcluster.Writer {
	w := c.StartWriter(t.Context(), opts)
	t.Cleanup(w.Stop)
	return w
}

// waitAcked waits until node ("" = any) acknowledged n writes at or after
// since, and returns when the first of them was acknowledged; it fails the
// test otherwise.
func waitAcked(t *testing.T, w *testcluster.Writer, node string, since time.Time, n int, timeout time.Duration) time.Time {
	t.Helper()
	first, err := w.WaitAcked(t.Context(), node, since, n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// checkAcked fails the test unless every acknowledged id is in n's table.
func checkAcked(t *testing.T, n *testcluster.Node, table string, acks []testcluster.Ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), replicateTimeout)
	defer cancel()
	lost, rows, err := testcluster.MissingAcks(ctx, n, table, acks)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing on %s: %v", len(lost), len(acks), n.Name, testcluster.DescribeAcks(lost, 20))
	}
	t.Logf("writer: %d writes acknowledged, %d missing on %s (%d rows there)", len(acks), len(lost), n.Name, rows)
}

func closeQuietly(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeWait)
	defer cancel()
	_ = conn.Close(ctx)
}
