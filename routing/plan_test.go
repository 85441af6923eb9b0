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
		{"pause: every pooler, then the hook", full, PointPause, []Action{
			{Kind: PgBouncerPause, Index: 0}, {Kind: PgBouncerPause, Index: 1}, {Kind: Hook}}},
		{"pause without poolers: HAProxy waits for the promotion", Config{HAProxy: []HAProxy{ha}}, PointPause, nil},
		{"restore resumes the poolers; no restore hook configured", full, PointRestore, []Action{
			{Kind: PgBouncerResume, Index: 0}, {Kind: PgBouncerResume, Index: 1}}},
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
	for p, want := range map[Point]Severity{PointPause: Abort, PointRestore: Warn, PointRepoint: Warn, PointFailover: Warn} {
		if got := SeverityOf(p); got != want {
			t.Errorf("SeverityOf(%s) = %d, want %d", p, got, want)
		}
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
