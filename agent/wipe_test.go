package agent

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/postgres/pgtest"
	"github.com/regent-ha/regent/restapi"
)

// TestReinitializeGuard: POST /reinitialize on a replica whose data
// directory holds another cluster (its system identifier is not the
// initialize key's) answers 409 naming why, and neither stops PostgreSQL
// nor wipes anything; with the cluster's own identifier it stops, wipes
// and answers 200.
func TestReinitializeGuard(t *testing.T) {
	for _, tc := range []struct {
		name     string
		initKey  string
		wantCode int
		wantText string
		wantOps  []string
	}{
		{"another cluster's data directory", "222", http.StatusConflict, "reinitialize refused, nothing was deleted: refusing to wipe", nil},
		{"this cluster's", "111", http.StatusOK, "reinitialize started", []string{"pg stop immediate", "pg wipe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			h := replicaOfPg9(t, tc.initKey)
			h.events.take()
			type answer struct {
				code int
				text string
			}
			reply := make(chan answer, 1)
			go func() {
				code, text := h.agent.Reinitialize(ctx, false)
				reply <- answer{code, text}
			}()
			h.agent.runCommand(ctx, <-h.agent.commands) // the loop's part
			got := <-reply
			if got.code != tc.wantCode || !strings.HasPrefix(got.text, tc.wantText) {
				t.Errorf("Reinitialize = %d %q, want %d %q…", got.code, got.text, tc.wantCode, tc.wantText)
			}
			if j := h.agent.job; j != nil {
				// The stop and wipe run beside the loop; the loop collects them.
				if tc.wantOps == nil {
					t.Fatalf("a refused reinitialize started %s", j.kind)
				}
				h.agent.endJob(j, <-j.done)
				if h.agent.pgState != PGCreatingReplica {
					t.Errorf("after the wipe pgState = %q, want %q", h.agent.pgState, PGCreatingReplica)
				}
			}
			var ops []string
			for _, e := range h.events.take() {
				if strings.HasPrefix(e, "pg stop") || strings.HasPrefix(e, "pg wipe") {
					ops = append(ops, e)
				}
			}
			if !slices.Equal(ops, tc.wantOps) {
				t.Errorf("PostgreSQL operations = %q, want %q", ops, tc.wantOps)
			}
		})
	}
}

// TestReinitializeRefusedWhileBusy: a clone or rewind running beside the
// loop owns PostgreSQL and its data directory: reinitialize and restart
// are refused (503) and nothing is stopped or wiped.
func TestReinitializeRefusedWhileBusy(t *testing.T) {
	ctx := t.Context()
	h := replicaOfPg9(t, "111")
	release := make(chan struct{})
	h.agent.startJob(ctx, "rewind", func(context.Context) error { <-release; return nil }, func(error) {})
	defer func() { close(release); h.agent.endJob(h.agent.job, <-h.agent.job.done) }()
	h.events.take()
	for name, call := range map[string]func() (int, string){
		"reinitialize": func() (int, string) { return h.agent.Reinitialize(ctx, false) },
		"restart":      func() (int, string) { return h.agent.Restart(ctx, restapi.RestartRequest{}) },
	} {
		type answer struct {
			code int
			text string
		}
		reply := make(chan answer, 1)
		go func() {
			code, text := call()
			reply <- answer{code, text}
		}()
		h.agent.runCommand(ctx, <-h.agent.commands)
		got := <-reply
		if got.code != http.StatusServiceUnavailable || !strings.Contains(got.text, "a rewind is running beside the loop") {
			t.Errorf("%s while a rewind runs = %d %q, want 503 naming the rewind", name, got.code, got.text)
		}
	}
	for _, e := range h.events.take() {
		if strings.HasPrefix(e, "pg stop") || strings.HasPrefix(e, "pg wipe") {
			t.Errorf("PostgreSQL was touched while a rewind owns it: %s", e)
		}
	}
}

// replicaOfPg9 is a replica (system identifier 111) of a cluster led by
// pg9 whose initialize key holds initKey.
func replicaOfPg9(t *testing.T, initKey string) *loopHarness {
	t.Helper()
	store := newStore()
	if err := store.Put(t.Context(), store.Keys().Initialize(), []byte(initKey)); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(t.Context(), store.Keys().Leader(), []byte("pg9")); err != nil {
		t.Fatal(err)
	}
	pg := pgtest.New(111)
	pg.SetReplica(0x3000000)
	return newLoopHarness(t, store, pg)
}
