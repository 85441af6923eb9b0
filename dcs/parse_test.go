package dcs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestParseCluster(t *testing.T) {
	k := NewKeys("/service/", "demo")
	kv := func(name, value string, rev int64) KV {
		return KV{Key: k.Prefix() + name, Value: []byte(value), CreateRevision: rev, ModRevision: rev}
	}
	empty := func() *Cluster {
		return &Cluster{Revision: 9, Members: map[string]Member{}, MemberRevs: map[string]int64{}, Extra: map[string]Value{}}
	}
	with := func(f func(c *Cluster)) *Cluster { c := empty(); f(c); return c }

	tests := []struct {
		name string
		kvs  []KV
		want *Cluster
	}{
		{"empty", nil, empty()},
		{
			name: "leader is raw text with its lease and revisions",
			kvs:  []KV{{Key: k.Leader(), Value: []byte("pg1"), CreateRevision: 3, ModRevision: 5, Lease: 0x77}},
			want: with(func(c *Cluster) { c.Leader = &Leader{Name: "pg1", Lease: 0x77, CreateRevision: 3, ModRevision: 5} }),
		},
		{
			name: "initialize empty string is kept (bootstrap running)",
			kvs:  []KV{kv("initialize", "", 2)},
			want: with(func(c *Cluster) { c.Initialize = ptr("") }),
		},
		{
			name: "config is kept raw, even when not JSON",
			kvs:  []KV{kv("config", "{ttl: oops", 4)},
			want: with(func(c *Cluster) { c.Config = &Value{Data: []byte("{ttl: oops"), CreateRevision: 4, ModRevision: 4} }),
		},
		{
			name: "member JSON, role master read as primary",
			kvs:  []KV{kv("members/pg1", `{"conn_url":"postgres://h:5432/postgres","api_url":"http://h:8008/patroni","state":"running","role":"master","version":"3.0.2","xlog_location":100,"timeline":2,"tags":{"nofailover":true}}`, 6)},
			want: with(func(c *Cluster) {
				c.Members["pg1"] = Member{ConnURL: "postgres://h:5432/postgres", APIURL: "http://h:8008/patroni", State: "running",
					Role: "primary", Version: "3.0.2", XLogLocation: ptr[uint64](100), Timeline: 2, Tags: map[string]any{"nofailover": true}}
				c.MemberRevs["pg1"] = 6
			}),
		},
		{
			name: "member that is not JSON counts as empty",
			kvs:  []KV{kv("members/pg2", "{not json", 6)},
			want: with(func(c *Cluster) { c.Members["pg2"] = Member{}; c.MemberRevs["pg2"] = 6 }),
		},
		{
			name: "member field of the wrong type is skipped, others kept",
			kvs:  []KV{kv("members/pg2", `{"role":"replica","xlog_location":"lots","state":"running"}`, 6)},
			want: with(func(c *Cluster) {
				c.Members["pg2"] = Member{Role: "replica", State: "running"}
				c.MemberRevs["pg2"] = 6
			}),
		},
		{
			name: "legacy member: bare libpq URL with application_name",
			kvs:  []KV{kv("members/pg3", "postgres://h:5432/postgres?application_name=http%3A%2F%2Fh%3A8008%2Fpatroni", 6)},
			want: with(func(c *Cluster) {
				c.Members["pg3"] = Member{ConnURL: "postgres://h:5432/postgres", APIURL: "http://h:8008/patroni"}
				c.MemberRevs["pg3"] = 6
			}),
		},
		{
			name: "members with extra slashes or no name are not members",
			kvs:  []KV{kv("members/a/b", "{}", 6), kv("members/", "{}", 7)},
			want: with(func(c *Cluster) {
				c.Extra["members/a/b"] = Value{Data: []byte("{}"), CreateRevision: 6, ModRevision: 6}
				c.Extra["members/"] = Value{Data: []byte("{}"), CreateRevision: 7, ModRevision: 7}
			}),
		},
		{
			name: "status, and unparsable status counts as zero",
			kvs:  []KV{kv("status", `{"optime":83886240,"slots":{"logical1":500}}`, 8)},
			want: with(func(c *Cluster) { c.Status = Status{Optime: 83886240, Slots: map[string]int64{"logical1": 500}} }),
		},
		{"garbage status", []KV{kv("status", "oops", 8)}, empty()},
		{
			name: "failover JSON with revision",
			kvs:  []KV{kv("failover", `{"leader":"pg1","member":"pg2","scheduled_at":"2030-01-01T00:00:00+00:00"}`, 8)},
			want: with(func(c *Cluster) {
				c.Failover = Failover{Leader: "pg1", Member: "pg2", ScheduledAt: "2030-01-01T00:00:00+00:00"}
				c.FailoverRev = 8
			}),
		},
		{
			name: "legacy failover string leader:candidate",
			kvs:  []KV{kv("failover", "pg1:pg2", 8)},
			want: with(func(c *Cluster) { c.Failover = Failover{Leader: "pg1", Member: "pg2"}; c.FailoverRev = 8 }),
		},
		{
			name: "cleared failover {}",
			kvs:  []KV{kv("failover", "{}", 8)},
			want: with(func(c *Cluster) { c.FailoverRev = 8 }),
		},
		{
			name: "sync with revision",
			kvs:  []KV{kv("sync", `{"leader":"pg1","sync_standby":"pg3,pg2"}`, 8)},
			want: with(func(c *Cluster) { c.Sync = Sync{Leader: "pg1", SyncStandby: ptr("pg3,pg2")}; c.SyncRev = 8 }),
		},
		{
			name: "history with 3- and 5-element lines; a bad line is skipped",
			kvs: []KV{kv("history", `[[1,25165984,"no recovery target specified"],"junk",`+
				`[2,50331744,"no recovery target specified","2023-04-07T10:00:00+00:00","pg2"]]`, 8)},
			want: with(func(c *Cluster) {
				c.History = []HistoryEntry{
					{Timeline: 1, SwitchLSN: 25165984, Reason: "no recovery target specified"},
					{Timeline: 2, SwitchLSN: 50331744, Reason: "no recovery target specified", PromotedAt: "2023-04-07T10:00:00+00:00", NewLeader: "pg2"},
				}
			}),
		},
		{
			name: "unknown keys go to Extra; keys outside the prefix are ignored",
			kvs:  []KV{kv("switchover", "abc", 8), kv("failsafe", `{"pg1":"x"}`, 9), {Key: "/service/other/leader", Value: []byte("x")}},
			want: with(func(c *Cluster) {
				c.Extra["switchover"] = Value{Data: []byte("abc"), CreateRevision: 8, ModRevision: 8}
				c.Extra["failsafe"] = Value{Data: []byte(`{"pg1":"x"}`), CreateRevision: 9, ModRevision: 9}
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseCluster(k, tt.kvs, 9)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ParseCluster (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseClusterTimeline(t *testing.T) {
	k := NewKeys("/service/", "demo")
	c := ParseCluster(k, []KV{{Key: k.History(), Value: []byte(`[[1,100,"r"],[4,200,"r","t","pg2"]]`)}}, 1)
	if got := c.Timeline(); got != 5 {
		t.Errorf("Timeline = %d, want 5", got)
	}
	if got := ParseCluster(k, []KV{{Key: k.History(), Value: []byte(`[]`)}}, 1).Timeline(); got != 1 {
		t.Errorf("Timeline of [] = %d, want 1", got)
	}
}

func TestApplyAndDiff(t *testing.T) {
	k := NewKeys("/service/", "demo")
	base := ParseCluster(k, []KV{
		{Key: k.Leader(), Value: []byte("pg1"), Lease: 1, CreateRevision: 2, ModRevision: 2},
		{Key: k.Member("pg1"), Value: []byte(`{"role":"primary"}`)},
	}, 2)
	next := base.clone()
	if bits := next.apply(k, KV{Key: k.Leader()}, true); bits != ChangeLeader {
		t.Errorf("apply(delete leader) = %v", bits)
	}
	if bits := next.apply(k, KV{Key: k.Switchover("7"), Value: []byte("{}")}, false); bits != ChangeSwitchover {
		t.Errorf("apply(switchover record) = %v", bits)
	}
	if base.Leader == nil || base.LeaderName() != "pg1" || len(base.Extra) != 0 {
		t.Fatalf("apply on a clone modified the original: %+v", base)
	}
	if next.Leader != nil {
		t.Errorf("leader not cleared: %+v", next.Leader)
	}
	if got, want := Diff(k, base, next), ChangeLeader|ChangeSwitchover; got != want {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	if got := Diff(k, base, base.clone()); got != 0 {
		t.Errorf("Diff of equal views = %v", got)
	}
	if got, want := Diff(k, nil, base), ChangeLeader|ChangeMembers; got != want {
		t.Errorf("Diff from nil = %v, want %v", got, want)
	}
}
