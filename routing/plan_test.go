package routing

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlan(t *testing.T) {
	pgb := PgBouncer{Admin: "x", Databases: []string{"app"}, IncludeFile: "/f"}
	ha := HAProxy{Socket: "/s", Backend: "primary"}
	full := Config{PgBouncer: []PgBouncer{pgb, pgb}, HAProxy: []HAProxy{ha},
		Hooks: Hooks{Pause: []string{"/p"}, Repoint: []string{"/r"}}}
	target := Target{Leader: "pg2", Others: []string{"pg3", "pg1", "pg2", "pg3"}}
	for _, tc := range []struct {
		name  string
		cfg   Config
		point Point
		want  []Action
	}{
		{"nothing configured", Config{}, PointRepoint, nil},
		{"pause: every pooler, drain the old primary, then the hook", full, PointPause, []Action{
			{Kind: PgBouncerPause, Index: 0}, {Kind: PgBouncerPause, Index: 1}, {Kind: HAProxyHold, Index: 0, Member: "pg2"}, {Kind: Hook}}},
		{"pause without poolers: HAProxy only drains", Config{HAProxy: []HAProxy{ha}}, PointPause, []Action{{Kind: HAProxyHold, Index: 0, Member: "pg2"}}},
		{"restore resumes the poolers and readies the old primary; no restore hook configured", full, PointRestore, []Action{
			{Kind: PgBouncerResume, Index: 0}, {Kind: PgBouncerResume, Index: 1}, {Kind: HAProxyReady, Index: 0, Member: "pg2"}}},
		{"repoint: ready the leader first, poolers, drain the others once each, hook", full, PointRepoint, []Action{
			{Kind: HAProxyReady, Index: 0, Member: "pg2"},
			{Kind: PgBouncerRepoint, Index: 0}, {Kind: PgBouncerRepoint, Index: 1},
			{Kind: HAProxyDrain, Index: 0, Member: "pg1"}, {Kind: HAProxyDrain, Index: 0, Member: "pg3"},
			{Kind: Hook}}},
		{"failover: the same routers, no failover hook configured", full, PointFailover, []Action{
			{Kind: HAProxyReady, Index: 0, Member: "pg2"},
			{Kind: PgBouncerRepoint, Index: 0}, {Kind: PgBouncerRepoint, Index: 1},
			{Kind: HAProxyDrain, Index: 0, Member: "pg1"}, {Kind: HAProxyDrain, Index: 0, Member: "pg3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Plan(tc.cfg, tc.point, target)); diff != "" {
				t.Errorf("Plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSeverityOf(t *testing.T) {
	for _, tc := range []struct {
		p    Point
		k    ActionKind
		want Severity
	}{
		{PointPause, PgBouncerPause, Abort},
		{PointPause, Hook, Abort},
		{PointPause, HAProxyHold, Warn},
		{PointRestore, PgBouncerResume, Warn},
		{PointRepoint, PgBouncerRepoint, Warn},
		{PointRepoint, Hook, Warn},
		{PointFailover, HAProxyReady, Warn},
	} {
		if got := SeverityOf(tc.p, tc.k); got != tc.want {
			t.Errorf("SeverityOf(%s, %d) = %d, want %d", tc.p, tc.k, got, tc.want)
		}
	}
	results := []Result{
		{Action: Action{Kind: HAProxyHold}, Desc: "haproxy[0] drain primary/pg1", Err: ErrRefused},
		{Action: Action{Kind: PgBouncerPause}, Desc: "pgbouncer[0] PAUSE app"},
	}
	if err := AbortError(PointPause, results); err != nil {
		t.Errorf("a failed HAProxy drain at pause aborts: %v", err)
	}
	results[1].Err = ErrRefused
	if err := AbortError(PointPause, results); err == nil || err.Error() != "pgbouncer[0] PAUSE app: refused" {
		t.Errorf("AbortError = %v, want the PAUSE's failure", err)
	}
}

func TestIncludeFile(t *testing.T) {
	pb := PgBouncer{Databases: []string{"app", "billing"}, ConnectOptions: "pool_size=20"}
	got := string(IncludeFile(pb, PointRepoint, Target{Leader: "pg2", Host: "10.0.0.12", Port: 5433}, mustTime(t)))
	want := "; Written by Regent at 2026-12-06T04:00:00Z (repoint): the primary is pg2. Do not edit.\n" +
		"[databases]\n" +
		"app = host=10.0.0.12 port=5433 dbname=app pool_size=20\n" +
		"billing = host=10.0.0.12 port=5433 dbname=billing pool_size=20\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IncludeFile (-want +got):\n%s", diff)
	}
}
