package dcs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/regent-ha/regent/dcs"
)

func ExampleNewKeys() {
	k := dcs.NewKeys("/postgresql-common/", "15-main")
	fmt.Println(k.Leader())
	fmt.Println(k.Member("pg1"))
	// Output:
	// /postgresql-common/15-main/leader
	// /postgresql-common/15-main/members/pg1
}

func ExampleParseCluster() {
	k := dcs.NewKeys("service", "demo")
	c := dcs.ParseCluster(k, []dcs.KV{
		{Key: k.Leader(), Value: []byte("pg1"), Lease: 7},
		{Key: k.Member("pg1"), Value: []byte(`{"role":"master","state":"running"}`)},
		{Key: k.Failover(), Value: []byte("pg1:pg2")}, // legacy form
	}, 42)
	fmt.Println(c.LeaderName(), c.Members["pg1"].Role, c.Failover.Member)
	// Output: pg1 primary pg2
}

// The leader's renewal, as the agent's tick does it: one KeepAlive bounded
// by its own deadline, fencing by the send time of the last acknowledged
// renewal (DESIGN.md §2), never by etcd's keep-alive stream.
func ExampleClient_KeepAlive() {
	ctx := context.TODO() // the agent's ctx
	const ttl, safetyMargin = 10 * time.Second, 3 * time.Second
	c, err := dcs.Connect(ctx, dcs.Config{Endpoints: []string{"http://127.0.0.1:2379"}},
		dcs.NewKeys("service", "demo"), slog.Default())
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := c.GrantLease(ctx, ttl); err != nil {
		return
	}
	var lastRenewOK time.Time
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second) // retry_timeout
	sent := time.Now()                                      // before the request: the lease lives at least until sent + ttl
	err = c.KeepAlive(rctx)
	cancel()
	switch {
	case err == nil:
		lastRenewOK = sent
	case errors.Is(err, dcs.ErrLeaseLost):
		fmt.Println("lease gone, and the leader key with it: demote, then grant a new lease")
	}
	if time.Since(lastRenewOK) > ttl-safetyMargin {
		fmt.Println("demote now: etcd may expire the lease any moment")
	}
}
