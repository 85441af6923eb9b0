package dcstest

import (
	"slices"
	"strings"
	"sync"

	"github.com/regent-ha/regent/dcs"
)

// store is the state shared by a Fake and its peers. Every field of the
// store and of its Fakes is guarded by mu.
type store struct {
	mu      sync.Mutex
	keys    dcs.Keys
	rev     int64
	kvs     map[string]dcs.KV
	leases  map[int64]bool
	nextID  int64
	clients []*Fake
}

// put writes key at a new revision and refreshes the views.
func (s *store) put(key string, value []byte, lease int64) int64 {
	s.rev++
	kv := dcs.KV{Key: key, Value: slices.Clone(value), CreateRevision: s.rev, ModRevision: s.rev, Lease: lease}
	if old, ok := s.kvs[key]; ok {
		kv.CreateRevision = old.CreateRevision
	}
	s.kvs[key] = kv
	s.changed(s.keys.Change(key))
	return s.rev
}

// del deletes keys (absent ones are skipped) at one new revision.
func (s *store) del(keys ...string) {
	var bits dcs.Change
	for _, k := range keys {
		if _, ok := s.kvs[k]; ok {
			delete(s.kvs, k)
			bits |= s.keys.Change(k)
		}
	}
	if bits != 0 {
		s.rev++
		s.changed(bits)
	}
}

// dropLease removes a lease and deletes its keys.
func (s *store) dropLease(id int64) {
	delete(s.leases, id)
	var attached []string
	for k, kv := range s.kvs {
		if kv.Lease == id {
			attached = append(attached, k)
		}
	}
	s.del(attached...)
}

// parse builds a view of the current keys.
func (s *store) parse() *dcs.Cluster {
	kvs := make([]dcs.KV, 0, len(s.kvs))
	for _, kv := range s.kvs {
		if strings.HasPrefix(kv.Key, s.keys.Prefix()) {
			kvs = append(kvs, kv)
		}
	}
	slices.SortFunc(kvs, func(a, b dcs.KV) int { return strings.Compare(a.Key, b.Key) })
	return dcs.ParseCluster(s.keys, kvs, s.rev)
}

// changed refreshes the view of every Fake that is up.
func (s *store) changed(bits dcs.Change) {
	if bits == 0 {
		return
	}
	view := s.parse()
	for _, f := range s.clients {
		if !f.down {
			f.publish(view, bits)
		}
	}
}
