package agent

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/postgres/pgtest"
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
			store := newStore()
			if err := store.Put(ctx, store.Keys().Initialize(), []byte(tc.initKey)); err != nil {
				t.Fatal(err)
			}
			if err := store.Put(ctx, store.Keys().Leader(), []byte("pg9")); err != nil {
				t.Fatal(err)
			}
			pg := pgtest.New(111)
			pg.SetReplica(0x3000000)
			h := newLoopHarness(t, store, pg)
			h.takeEvents()
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
			var ops []string
			for _, e := range h.takeEvents() {
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
