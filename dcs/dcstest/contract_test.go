package dcstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/etcdembed"
)

// outcome names an error by the sentinel it wraps.
func outcome(err error) string {
	for _, s := range []error{dcs.ErrConflict, dcs.ErrNotLeader, dcs.ErrLeaseLost} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err != nil {
		return "unexpected: " + err.Error()
	}
	return "ok"
}

// scenario drives two agents through the calls the agent makes and
// records every outcome; the Fake must record the same as etcd.
func scenario(ctx context.Context, a, b agentDCS) []string {
	var log []string
	rec := func(step string, v any, err error) {
		log = append(log, fmt.Sprintf("%s: %v %s", step, v, outcome(err)))
	}
	_, err := a.KeepAlive(ctx)
	rec("keepalive without lease", "", err)
	_, err = a.GrantLease(ctx, 10*time.Second)
	rec("grant a", "", err)
	_, err = b.GrantLease(ctx, 10*time.Second)
	rec("grant b", "", err)
	won, err := a.AcquireLeader(ctx, "pg1")
	rec("acquire a", won, err)
	won, err = b.AcquireLeader(ctx, "pg2")
	rec("acquire b", won, err)
	won, err = a.AcquireLeader(ctx, "pg1")
	rec("re-acquire a", won, err)
	rec("check b", "", b.CheckLeader(ctx, "pg2"))
	rec("check a", "", a.CheckLeader(ctx, "pg1"))
	rec("release by b", "", b.ReleaseLeader(ctx, "pg1"))
	rec("member a", "", a.PutMember(ctx, "pg1", dcs.Member{Role: "master", State: "running"}))
	rec("member b", "", b.PutMember(ctx, "pg2", dcs.Member{Role: "replica", State: "running"}))
	rev, err := a.CAS(ctx, a.Keys().Config(), []byte(`{"ttl":10}`), 0)
	rec("create config", "", err)
	_, err = b.CAS(ctx, b.Keys().Config(), []byte(`{"ttl":20}`), 0)
	rec("create config again", "", err)
	_, err = b.CAS(ctx, b.Keys().Config(), []byte(`{"ttl":20}`), rev)
	rec("cas config", "", err)
	rec("delete config stale", "", a.Delete(ctx, a.Keys().Config(), rev))
	won, err = a.CreateInitialize(ctx)
	rec("initialize a", won, err)
	won, err = b.CreateInitialize(ctx)
	rec("initialize b", won, err)
	cl, err := b.Load(ctx)
	rec("load", describe(cl), err)
	rec("revoke a", "", a.RevokeLease(ctx))
	rec("check a after revoke", "", a.CheckLeader(ctx, "pg1"))
	_, err = a.KeepAlive(ctx)
	rec("keepalive after revoke", "", err)
	cl, err = b.Load(ctx)
	rec("load after revoke", describe(cl), err)
	rec("release a after revoke", "", a.ReleaseLeader(ctx, "pg1"))
	return log
}

func describe(c *dcs.Cluster) string {
	if c == nil {
		return "nil"
	}
	var cfg string
	if c.Config != nil {
		cfg = string(c.Config.Data)
	}
	roles := make([]string, 0, len(c.Members))
	for _, n := range c.MemberNames() {
		roles = append(roles, n+"="+c.Members[n].Role)
	}
	return fmt.Sprintf("leader=%q members=[%s] config=%s init=%v",
		c.LeaderName(), strings.Join(roles, " "), cfg, c.Initialize != nil)
}

// contract runs play against two real clients on an embedded etcd and
// against two Fakes on one store, and fails if the records differ. expire
// ends a lease behind its holder's back, as etcd does when the holder stops
// renewing: a revoke through another connection for etcd, ExpireLease for
// the Fake.
func contract(t *testing.T, scope string, play func(ctx context.Context, a, b agentDCS, expire func(id int64)) []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, err := etcdembed.Start(ctx, etcdembed.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	keys := dcs.NewKeys("service", scope)
	var clients [3]*dcs.Client
	for i := range clients {
		c, err := dcs.Connect(ctx, dcs.Config{Endpoints: e.Endpoints()}, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	want := play(ctx, clients[0], clients[1], func(id int64) {
		if _, err := clients[2].Raw().Revoke(ctx, clientv3.LeaseID(id)); err != nil {
			t.Errorf("revoke lease %x: %v", id, err)
		}
	})
	fa := New(keys)
	got := play(ctx, fa, fa.Peer(), fa.ExpireLease)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Fake differs from etcd (-etcd +fake):\n%s", d)
	}
	t.Logf("scenario:\n%s", strings.Join(want, "\n"))
}

func TestFakeMatchesEtcd(t *testing.T) {
	contract(t, "contract", func(ctx context.Context, a, b agentDCS, _ func(int64)) []string {
		return scenario(ctx, a, b)
	})
}
