package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/restapi"
)

var _ restapi.Commands = (*Agent)(nil)

func badConfig(format string, args ...any) error {
	return &restapi.HTTPError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// PatchConfig merges patch into the config key (Patroni's PATCH /config:
// null deletes, objects merge recursively) and writes it with a CAS on the
// revision it read, which must be ifRevision when that is not 0 (If-Match).
// An invalid result never reaches etcd.
func (a *Agent) PatchConfig(ctx context.Context, patch json.RawMessage, ifRevision int64) (json.RawMessage, error) {
	p, err := config.DecodeObject(patch)
	if err != nil {
		return nil, badConfig("%v", err)
	}
	cur, ok, err := a.dcs.Get(ctx, a.dcs.Keys().Config())
	switch {
	case err != nil:
		return nil, &restapi.HTTPError{Status: http.StatusServiceUnavailable, Message: "cannot read the config key: " + err.Error()}
	case ifRevision != 0 && cur.ModRevision != ifRevision: // absent: 0
		return nil, &restapi.ConfigChangedError{Expected: ifRevision, Current: cur.ModRevision}
	case !ok:
		return nil, &restapi.HTTPError{Status: http.StatusServiceUnavailable, Message: "the config key does not exist"}
	}
	base, err := config.DecodeObject(cur.Data)
	if err != nil {
		base = map[string]any{} // Patroni reads an unparsable value as {}
	}
	// Only the keys the patch sets are checked strictly: a foreign key
	// already in etcd (from Patroni) does not block an unrelated edit.
	data, err := config.EncodePatch(base, p, a.cfg.Watchdog)
	if err != nil {
		return nil, badConfig("%v", err)
	}
	rev, err := a.dcs.CAS(ctx, a.dcs.Keys().Config(), data, cur.ModRevision)
	if err != nil {
		switch {
		case errors.Is(err, dcs.ErrConflict) && ifRevision != 0:
			return nil, a.configChanged(ctx, ifRevision)
		case errors.Is(err, dcs.ErrConflict):
			return nil, &restapi.HTTPError{Status: http.StatusConflict, Message: "the config key changed concurrently; retry"}
		}
		return nil, &restapi.HTTPError{Status: http.StatusServiceUnavailable, Message: "cannot write the config key: " + err.Error()}
	}
	a.api.wrote(rev) // GET /config shows this revision or a later one
	// Key names only: values may be secrets (passwords in parameters).
	a.log.Info("dynamic config patched", "keys", patchKeys(p, ""), "revision", rev)
	return data, nil
}

// PutConfig replaces the config key after validating it: a plain put, or a
// CAS on ifRevision when that is not 0 (If-Match).
func (a *Agent) PutConfig(ctx context.Context, body json.RawMessage, ifRevision int64) (json.RawMessage, error) {
	m, err := config.DecodeObject(body)
	if err != nil {
		return nil, badConfig("%v", err)
	}
	data, err := config.EncodeDynamic(m, a.cfg.Watchdog)
	if err != nil {
		return nil, badConfig("%v", err)
	}
	key := a.dcs.Keys().Config()
	var rev int64
	if ifRevision == 0 {
		err = a.dcs.Put(ctx, key, data)
	} else {
		rev, err = a.dcs.CAS(ctx, key, data, ifRevision)
	}
	switch {
	case errors.Is(err, dcs.ErrConflict):
		return nil, a.configChanged(ctx, ifRevision)
	case err != nil:
		return nil, &restapi.HTTPError{Status: http.StatusBadGateway, Message: "cannot write the config key: " + err.Error()}
	}
	if rev == 0 { // a plain put says no revision: read the key's once
		if v, ok, gerr := a.dcs.Get(ctx, key); gerr == nil && ok {
			rev = v.ModRevision
		}
	}
	a.api.wrote(rev) // GET /config shows this revision or a later one
	a.log.Info("dynamic config replaced", "keys", patchKeys(m, ""), "revision", rev)
	return data, nil
}

// configChanged is the refusal of a write against revision want that the
// key no longer has; it re-reads the key for the revision it has now.
func (a *Agent) configChanged(ctx context.Context, want int64) error {
	cur, _, err := a.dcs.Get(ctx, a.dcs.Keys().Config())
	if err != nil {
		a.log.Warn("cannot read the config key's revision after a lost CAS", "err", err)
		cur.ModRevision = 0 // unknown
	}
	return &restapi.ConfigChangedError{Expected: want, Current: cur.ModRevision}
}

// patchKeys lists the dotted paths of a patch's leaves, sorted
// ("postgresql.parameters.work_mem", "ttl"): what changed, never a value.
func patchKeys(m map[string]any, prefix string) []string {
	var keys []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			keys = append(keys, patchKeys(sub, prefix+k+".")...)
			continue
		}
		keys = append(keys, prefix+k)
	}
	slices.Sort(keys)
	return keys
}
