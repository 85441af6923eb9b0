package chaos

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/regent-ha/regent/internal/testcluster"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseSampleInterval is how often a round reads the leader key and its
// lease. A lease is never shorter than 7 s (the smallest valid ttl), so a
// key cannot move to a lease and lose it between two samples while etcd
// answers.
const leaseSampleInterval = 250 * time.Millisecond

// leaseSample is one reading of the leader key and of the lease it is on,
// taken by the test process straight from etcd.
type leaseSample struct {
	// At is when the TimeToLive request was sent (on the run's clock).
	At time.Duration
	// Blind: etcd did not answer; nothing is known.
	Blind bool
	// Holder is the key's value ("" when there is no key).
	Holder string
	Lease  int64
	// Granted is the lease's ttl as granted (the ttl in force for it).
	Granted time.Duration
	// Bound is At + the remaining TTL etcd reported (whole seconds,
	// truncated): the lease cannot expire before it, and keepalives only
	// push expiry later. 0 when the lease is gone.
	Bound time.Duration
}

// readLeaderLease reads the leader key and its lease (a Blind sample when
// etcd does not answer within a second).
func (c *Cluster) readLeaderLease(ctx context.Context) leaseSample {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.keys.Leader())
	if err != nil {
		return leaseSample{At: c.clock.Now(), Blind: true}
	}
	if len(resp.Kvs) == 0 {
		return leaseSample{At: c.clock.Now()}
	}
	kv := resp.Kvs[0]
	s := leaseSample{At: c.clock.Now(), Holder: string(kv.Value), Lease: kv.Lease}
	if kv.Lease == 0 {
		return s
	}
	ttl, err := c.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	if err != nil {
		return leaseSample{At: s.At, Blind: true}
	}
	s.Granted = time.Duration(ttl.GrantedTTL) * time.Second
	if ttl.TTL > 0 {
		s.Bound = s.At + time.Duration(ttl.TTL)*time.Second
	}
	return s
}

// leaseTracker samples the leader key and its lease every
// leaseSampleInterval, from before a round's action and injection until
// its heal.
type leaseTracker struct {
	c    *Cluster
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	samples []leaseSample
}

// trackLease takes a first sample and keeps sampling until Stop.
func (c *Cluster) trackLease(ctx context.Context) *leaseTracker {
	ctx, cancel := context.WithCancel(ctx)
	t := &leaseTracker{c: c, stop: cancel, done: make(chan struct{})}
	t.Sample(ctx)
	go func() {
		defer close(t.done)
		testcluster.Every(ctx, leaseSampleInterval, func() { t.Sample(ctx) })
	}()
	return t
}

// Sample takes one sample now (the tracker's goroutine does the same).
func (t *leaseTracker) Sample(ctx context.Context) {
	s := t.c.readLeaderLease(ctx)
	if ctx.Err() != nil {
		return // stopped meanwhile: a cancelled read is no blindness
	}
	t.mu.Lock()
	t.samples = append(t.samples, s)
	t.mu.Unlock()
}

// Holder is the holder the latest sample that etcd answered saw ("" if
// none did, or the key was gone).
func (t *leaseTracker) Holder() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.samples) - 1; i >= 0; i-- {
		if !t.samples[i].Blind {
			return t.samples[i].Holder
		}
	}
	return ""
}

// Stop ends the sampling and returns the samples in time order.
func (t *leaseTracker) Stop() []leaseSample {
	t.stop()
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.samples)
	// Sample runs on two goroutines: order by when each was read.
	slices.SortStableFunc(out, func(a, b leaseSample) int { return cmp.Compare(a.At, b.At) })
	return out
}

// ttlChange is a PATCH /config of ttl a round sent: it may have taken
// effect whatever its answer (a timed-out CAS can still commit).
type ttlChange struct {
	Sent time.Duration // when the request was sent
	TTL  time.Duration // the ttl it asked for
}

// leaseBound is the earliest moment node's leadership could expire at
// etcd, from a round's samples. The leadership is followed from the first
// sample until the first one that shows the key gone or held by another
// node; the key may move between leases meanwhile (the agent rotates its
// lease when ttl changes), and only the last lease it was seen on counts:
// the bound is the latest of that lease's samples. It returns 0 when node
// was never seen holding the key.
//
// When etcd stopped answering before the leadership was seen to end (a
// quorum loss), the key may have moved unseen to a lease granted for a
// ttl change sent in the round. Such a lease was granted after the change
// was sent, so it cannot expire before Sent + TTL: the bound is then the
// smaller of the two (the conservative choice; a later bound could miss
// a violation). note says when it did so.
func leaseBound(samples []leaseSample, node string, changes []ttlChange) (bound, ttl time.Duration, note string) {
	var final int64
	blind := false
	for _, s := range samples {
		if s.Blind {
			blind = true
			continue
		}
		if s.Holder != node {
			if final != 0 {
				blind = false
				break // the leadership ended, seen
			}
			continue // not yet (an action moved it first): keep looking
		}
		blind = false
		if s.Lease != final {
			final, bound = s.Lease, 0
		}
		if s.Bound > bound {
			bound, ttl = s.Bound, s.Granted
		}
	}
	if final == 0 || bound == 0 || !blind {
		return bound, ttl, ""
	}
	for _, ch := range changes {
		if ch.TTL != ttl && ch.Sent+ch.TTL < bound {
			bound = ch.Sent + ch.TTL
			note = fmt.Sprintf("etcd unreadable after the ttl change to %s sent at %s: bound by it", ch.TTL, fmtDur(ch.Sent))
		}
	}
	return bound, ttl, note
}
