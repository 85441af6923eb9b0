package dcs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bounds of Run's back-off between a lost watch and the next Load: the
// first retry is quick (a compaction or a leader change heals at once); the
// cap keeps a down etcd from being hammered while staying well below any
// sane loop_wait + retry_timeout, so a recovered etcd is seen within 2s.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// loadTimeout bounds Run's Load: a range over a cluster's few dozen keys
	// takes milliseconds; the bound only makes a down etcd show in the log
	// instead of Load waiting silently for it.
	loadTimeout = 10 * time.Second
)

var errWatchClosed = errors.New("dcs: watch closed")

// Load reads the whole cluster with one linearizable range over the prefix
// and returns a fresh view (LoadedAt = now). It does not touch the cache.
func (c *Client) Load(ctx context.Context) (*Cluster, error) {
	resp, err := c.cli.Get(ctx, c.keys.Prefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("dcs: load %s: %w", c.keys.Prefix(), err)
	}
	c.touch()
	kvs := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = toKV(kv)
	}
	cl := ParseCluster(c.keys, kvs, resp.Header.Revision)
	cl.LoadedAt = time.Now()
	return cl, nil
}

func toKV(kv *mvccpb.KeyValue) KV {
	return KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Lease: kv.Lease}
}

// View returns the latest cached view, nil before Run's first Load. The
// view is immutable: never modify it.
func (c *Client) View() *Cluster { return c.view.Load() }

// Notify returns a channel (capacity 1) signalled after every view change;
// signals coalesce, so read TakeChanges after a receive.
func (c *Client) Notify() <-chan struct{} { return c.notify }

// TakeChanges returns the change bits accumulated since the last call and
// clears them.
func (c *Client) TakeChanges() Change { return Change(c.changes.Swap(0)) }

// publish swaps in a new view and signals the change.
func (c *Client) publish(next *Cluster, bits Change) {
	next.LoadedAt = time.Now()
	c.view.Store(next)
	c.changes.Or(uint32(bits))
	select {
	case c.notify <- struct{}{}:
	default:
	}
	c.subs.signal()
}

// Subscribe returns a channel (capacity 1, coalescing) signalled after
// every view change, for readers other than the HA loop (e.g. an event
// stream). Call cancel when done.
func (c *Client) Subscribe() (<-chan struct{}, func()) { return c.subs.add() }

// Run owns the cluster-view cache: it loads the cluster, then follows ONE
// watch on the prefix from the next revision, applying every event to a
// copy of the view and swapping it in. The watch runs under
// WithRequireLeader, so an etcd member cut off from its quorum closes it.
// When the watch fails, closes or is compacted, Run logs, backs off
// (100ms doubling to 2s) and loads again. It returns nil when ctx ends and
// never gives up before. Call it once.
func (c *Client) Run(ctx context.Context) error {
	backoff := minBackoff
	for {
		start := time.Now()
		err := c.follow(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // documented: nil when ctx ends; err is then only the cancellation
		}
		if time.Since(start) > maxBackoff {
			backoff = minBackoff
		}
		c.log.Warn("etcd watch lost, reloading", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow loads the cluster and applies the watch until it fails.
func (c *Client) follow(ctx context.Context) error {
	lctx, lcancel := context.WithTimeout(ctx, loadTimeout)
	cl, err := c.Load(lctx)
	lcancel()
	if err != nil {
		return err
	}
	c.publish(cl, ChangeReload|Diff(c.keys, c.view.Load(), cl))
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.cli.Watch(wctx, c.keys.Prefix(), clientv3.WithPrefix(),
		clientv3.WithRev(cl.Revision+1), clientv3.WithPrevKV())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("dcs: watch %s: %w", c.keys.Prefix(), err)
		}
		c.touch()
		if len(resp.Events) > 0 {
			c.apply(resp)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errWatchClosed
}

// apply applies one watch response to a copy of the view. Only Run's
// goroutine writes the view, so load-copy-store needs no lock.
func (c *Client) apply(resp clientv3.WatchResponse) {
	next := c.view.Load().clone()
	var bits Change
	for _, ev := range resp.Events {
		bits |= next.apply(c.keys, toKV(ev.Kv), ev.Type == clientv3.EventTypeDelete)
		next.Revision = max(next.Revision, ev.Kv.ModRevision)
	}
	next.Revision = max(next.Revision, resp.Header.Revision)
	c.publish(next, bits)
}
