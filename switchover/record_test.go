package switchover

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/dcs"
)

var t0 = time.Date(2026, 11, 22, 3, 5, 12, 0, time.UTC)

// TestRecordJSON: the record's JSON is a wire contract (etcd, the REST
// answers, regentctl, the event stream): typed stages, states and kinds
// marshal as the plain strings they always were.
func TestRecordJSON(t *testing.T) {
	r := Record{ID: "20261122-030512-abcdef", From: "pg1", To: "pg2", Reason: "kernel", RequestedBy: "ops", CreatedAt: t0,
		Timeout: "30s", Stage: StageCatchUp, State: StateFailed, Failure: &Failure{Reason: "late", Hint: "retry"},
		AbortRequested: true, FinalLSN: 83886120, PreflightLagBytes: 1024,
		Events: []Event{{Seq: 1, Stage: StagePreFlight, Kind: KindStarted, At: t0, Message: "checking"}, {Seq: 2, Stage: StagePreFlight, Kind: KindCompleted, At: t0.Add(10 * time.Millisecond), DurationMs: 10}}}
	const want = `{"id":"20261122-030512-abcdef","from":"pg1","to":"pg2","reason":"kernel","requested_by":"ops","created_at":"2026-11-22T03:05:12Z","timeout":"30s",` +
		`"stage":"WAIT_FOR_REPLICATION_CATCHUP","state":"failed","events":[{"seq":1,"stage":"PRE_FLIGHT_CHECKS","kind":"started","at":"2026-11-22T03:05:12Z","message":"checking"},` +
		`{"seq":2,"stage":"PRE_FLIGHT_CHECKS","kind":"completed","at":"2026-11-22T03:05:12.01Z","duration_ms":10}],"failure":{"reason":"late","hint":"retry"},` +
		`"abort_requested":true,"final_lsn":83886120,"preflight_lag_bytes":1024}`
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Errorf("record JSON\n got %s\nwant %s", data, want)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&r, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Error("Decode of broken JSON succeeded")
	}
}

func TestStages(t *testing.T) {
	want := []string{"PRE_FLIGHT_CHECKS", "QUIESCE_WRITES", "WAIT_FOR_REPLICATION_CATCHUP", "PROMOTE_STANDBY",
		"REPOINT_CLIENT_TRAFFIC", "POST_SWITCHOVER_VALIDATION", "CLEANUP"}
	if got := StageNames(); !slices.Equal(got, want) {
		t.Errorf("StageNames = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		stage Stage
		past  bool
	}{
		{StagePreFlight, false}, {StageQuiesce, false}, {StageCatchUp, false},
		{StagePromote, true}, {StageRepoint, true}, {StageValidation, true}, {StageCleanup, true},
		{"A_STAGE_FROM_A_NEWER_VERSION", true},
	} {
		if got := at(tt.stage).PastPointOfNoReturn(); got != tt.past {
			t.Errorf("%s: PastPointOfNoReturn = %v, want %v", tt.stage, got, tt.past)
		}
	}
}

func TestRecordStateAndTimeout(t *testing.T) {
	for _, tt := range []struct {
		state    State
		terminal bool
	}{{StateRunning, false}, {StateCompleted, true}, {StateFailed, true}, {StateAborted, true}} {
		if got := (&Record{State: tt.state}).Terminal(); got != tt.terminal {
			t.Errorf("%s: Terminal = %v, want %v", tt.state, got, tt.terminal)
		}
	}
	for timeout, want := range map[string]time.Duration{"45s": 45 * time.Second, "": time.Minute, "soon": time.Minute, "-5s": time.Minute, "0s": time.Minute} {
		if got := (&Record{Timeout: timeout}).TimeoutOr(time.Minute); got != want {
			t.Errorf("TimeoutOr(%q) = %s, want %s", timeout, got, want)
		}
	}
}

func TestAppendAt(t *testing.T) {
	r := &Record{Stage: StagePreFlight}
	r.AppendAt(t0, StageQuiesce, KindStarted, "stopping %s", "pg1")
	r.AppendAt(t0.Add(time.Second), StageQuiesce, KindWarning, "slow")
	r.AppendAt(t0.Add(1500*time.Millisecond), StageQuiesce, KindCompleted, "stopped")
	r.AppendAt(t0.Add(2*time.Second), StageCatchUp, KindStarted, "waiting")
	r.AppendAt(t0.Add(5*time.Second), StageCatchUp, KindFailed, "late")
	r.AppendAt(t0.Add(6*time.Second), StageRepoint, KindCompleted, "never started")
	want := []Event{
		{Seq: 1, Stage: StageQuiesce, Kind: KindStarted, At: t0, Message: "stopping pg1"},
		{Seq: 2, Stage: StageQuiesce, Kind: KindWarning, At: t0.Add(time.Second), Message: "slow"},
		{Seq: 3, Stage: StageQuiesce, Kind: KindCompleted, At: t0.Add(1500 * time.Millisecond), DurationMs: 1500, Message: "stopped"},
		{Seq: 4, Stage: StageCatchUp, Kind: KindStarted, At: t0.Add(2 * time.Second), Message: "waiting"},
		{Seq: 5, Stage: StageCatchUp, Kind: KindFailed, At: t0.Add(5 * time.Second), DurationMs: 3000, Message: "late"},
		{Seq: 6, Stage: StageRepoint, Kind: KindCompleted, At: t0.Add(6 * time.Second), Message: "never started"},
	}
	if diff := cmp.Diff(want, r.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if r.Stage != StageCatchUp {
		t.Errorf("stage %s, want the last started one, %s", r.Stage, StageCatchUp)
	}
	if got, ok := r.StartedAt(StageCatchUp); !ok || !got.Equal(t0.Add(2*time.Second)) {
		t.Errorf("StartedAt(catch-up) = %s, %v", got, ok)
	}
	if _, ok := r.StartedAt(StagePromote); ok {
		t.Error("StartedAt(promote) found an event")
	}
	if got, ok := r.CompletedAt(StageQuiesce); !ok || !got.Equal(t0.Add(1500*time.Millisecond)) {
		t.Errorf("CompletedAt(quiesce) = %s, %v", got, ok)
	}
	if _, ok := r.CompletedAt(StageCatchUp); ok {
		t.Error("CompletedAt(catch-up) found a failed stage completed")
	}
	before := time.Now().UTC()
	r.Append(StageCleanup, KindInfo, "now")
	if e := r.Events[len(r.Events)-1]; e.At.Before(before) || e.At.Location() != time.UTC {
		t.Errorf("Append stamped %s, want the UTC wall clock after %s", e.At, before)
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID(t0), NewID(t0)
	if !regexp.MustCompile(`^20261122-030512-[0-9a-f]{6}$`).MatchString(a) || a == b {
		t.Errorf("NewID = %q, %q: want the time and distinct random suffixes", a, b)
	}
	if later := NewID(t0.Add(time.Second)); later <= a {
		t.Errorf("a later id %q does not sort after %q", later, a)
	}
}

// view holds a lock naming lockID (none when "") and the given records.
func view(lockID string, records map[string]State) *dcs.Cluster {
	v := &dcs.Cluster{Extra: map[string]dcs.Value{}}
	if lockID != "" {
		v.Extra["switchover"] = dcs.Value{Data: []byte(lockID), ModRevision: 7}
	}
	for id, st := range records {
		data, _ := json.Marshal(Record{ID: id, State: st})
		v.Extra["switchovers/"+id] = dcs.Value{Data: data}
	}
	return v
}

func TestActive(t *testing.T) {
	broken := view("s1", nil)
	broken.Extra["switchovers/s1"] = dcs.Value{Data: []byte("{")}
	for _, tt := range []struct {
		name string
		v    *dcs.Cluster
		want string
	}{
		{"no view", nil, ""},
		{"no lock", view("", map[string]State{"s1": StateRunning}), ""},
		{"lock without a record", view("s1", nil), ""},
		{"running", view("s2", map[string]State{"s1": StateCompleted, "s2": StateRunning}), "s2"},
		{"finished", view("s1", map[string]State{"s1": StateAborted}), ""},
		{"unreadable", broken, ""},
	} {
		if got := ActiveID(tt.v); got != tt.want {
			t.Errorf("%s: ActiveID = %q, want %q", tt.name, got, tt.want)
		}
		if r := Active(tt.v); (r != nil) != (tt.want != "") {
			t.Errorf("%s: Active = %+v", tt.name, r)
		}
	}
}

func TestIDsAndRecordData(t *testing.T) {
	v := view("s2", map[string]State{"s2": StateRunning, "s1": StateCompleted})
	v.Extra["decisions/x"] = dcs.Value{}
	if got := IDs(v); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("IDs = %v", got)
	}
	if IDs(nil) != nil {
		t.Error("IDs of no view")
	}
	if data, ok := RecordData(v, "s2"); !ok || string(data) != string(v.Extra["switchovers/s2"].Data) {
		t.Errorf("RecordData(s2) = %s, %v", data, ok)
	}
	if _, ok := RecordData(v, "s3"); ok {
		t.Error("RecordData found s3")
	}
	if _, ok := RecordData(nil, "s1"); ok {
		t.Error("RecordData found a record without a view")
	}
}

func TestActiveAfter(t *testing.T) {
	atRev := func(id string, st State, stage Stage, rev int64) *dcs.Cluster {
		v := view(id, nil)
		data, _ := json.Marshal(Record{ID: id, State: st, Stage: stage})
		v.Extra["switchovers/"+id] = dcs.Value{Data: data, ModRevision: rev}
		return v
	}
	wrote := func(id string, st State, stage Stage, rev int64) Written {
		data, _ := json.Marshal(Record{ID: id, State: st, Stage: stage})
		return Written{ID: id, Rev: rev, Data: data}
	}
	for _, tt := range []struct {
		name      string
		v         *dcs.Cluster
		w         Written
		wantStage Stage // "" for no running record
	}{
		{"nothing written", atRev("s1", StateRunning, StagePreFlight, 10), Written{}, StagePreFlight},
		{"own write is newer", atRev("s1", StateRunning, StagePreFlight, 10), wrote("s1", StateRunning, StageQuiesce, 11), StageQuiesce},
		{"the view caught up", atRev("s1", StateRunning, StageQuiesce, 11), wrote("s1", StateRunning, StageQuiesce, 11), StageQuiesce},
		{"the view is past the write", atRev("s1", StateRunning, StageCatchUp, 12), wrote("s1", StateRunning, StageQuiesce, 11), StageCatchUp},
		{"own write closed it", atRev("s1", StateRunning, StageCleanup, 20), wrote("s1", StateCompleted, StageCleanup, 21), ""},
		{"another record is running", atRev("s2", StateRunning, StagePreFlight, 30), wrote("s1", StateRunning, StageQuiesce, 40), StagePreFlight},
		{"no lock in the view", view("", nil), wrote("s1", StateRunning, StageQuiesce, 11), ""},
		{"no view", nil, wrote("s1", StateRunning, StageQuiesce, 11), ""},
		{"unreadable write", atRev("s1", StateRunning, StagePreFlight, 10), Written{ID: "s1", Rev: 11, Data: []byte("{")}, ""},
	} {
		r := ActiveAfter(tt.v, tt.w)
		switch {
		case tt.wantStage == "" && r != nil:
			t.Errorf("%s: ActiveAfter = %s at %s, want none", tt.name, r.ID, r.Stage)
		case tt.wantStage != "" && (r == nil || r.Stage != tt.wantStage):
			t.Errorf("%s: ActiveAfter = %+v, want the record at %s", tt.name, r, tt.wantStage)
		}
	}
}
