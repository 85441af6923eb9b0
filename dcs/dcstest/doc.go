// Package dcstest provides Fake, an in-memory stand-in for *dcs.Client for
// the agent's unit tests (like net/http/httptest).
//
// A Fake keeps keys with etcd-like revisions and leases that a test expires
// by hand (ExpireLease); SetDown makes every call of one Fake fail with an
// error wrapping ErrDown, as a partitioned agent would see. Several Fakes
// made with Peer share one store, so a test can run a leader race between
// agents. Views are built with dcs.ParseCluster, the real client's parser,
// and refreshed synchronously on every write: no watch, no goroutine, no
// clock of its own (time.Now, so testing/synctest controls it).
//
// dcstest never talks to etcd.
package dcstest
