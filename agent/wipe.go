package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// wipeCheckTimeout bounds the guard's pg_controldata run (one 8 KB file).
// A constant, not the lease's io deadline: the wipe also runs beside the
// loop (after a failed rewind), where the loop's state is not ours to read.
const wipeCheckTimeout = 10 * time.Second

// clusterSystemID is the system identifier in the initialize key, which
// the wipe guard requires of the data directory; postgres.AnySystem while
// the cluster has none (a bootstrap that fails wipes its own initdb).
func clusterSystemID(v *dcs.Cluster) uint64 {
	if v == nil || v.Initialize == nil {
		return postgres.AnySystem
	}
	id, err := strconv.ParseUint(*v.Initialize, 10, 64)
	if err != nil {
		return postgres.AnySystem
	}
	return id
}

// wipeDataDir empties the data directory if it is this cluster's (or
// empty): postgres.WipeDataDir's guard with the initialize key's system
// identifier. Safe beside the loop (it reads only the watch cache).
func (a *Agent) wipeDataDir(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, wipeCheckTimeout)
	defer cancel()
	return a.pg.WipeDataDir(wctx, clusterSystemID(a.dcs.View()))
}

// checkWipe is wipeDataDir's guard alone: nothing is stopped or deleted.
func (a *Agent) checkWipe(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, wipeCheckTimeout)
	defer cancel()
	return a.pg.CheckWipe(wctx, clusterSystemID(a.dcs.View()))
}

// reinitializeFailed is POST /reinitialize's answer to a failed check or
// wipe: 409 with the guard's reason when it refused (nothing was deleted),
// 503 otherwise.
func reinitializeFailed(err error) (int, string) {
	if errors.Is(err, postgres.ErrWipeRefused) {
		return http.StatusConflict, fmt.Sprintf("reinitialize refused, nothing was deleted: %v", err)
	}
	return http.StatusServiceUnavailable, fmt.Sprintf("reinitialize failed: %v", err)
}
