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
// Its tests hold the Fake to etcd: TestFakeMatchesEtcd plays the same
// scenarios on two Fakes and on two *dcs.Client against an embedded etcd,
// compares every outcome, and fails unless the scenarios call every method
// of agent.DCS.
//
// The Fake itself never talks to etcd.
package dcstest
