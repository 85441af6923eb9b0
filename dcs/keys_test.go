package dcs

import "testing"

func TestKeysPatroniLayout(t *testing.T) {
	k := NewKeys("/service/", "demo")
	for got, want := range map[string]string{
		k.Prefix():               "/service/demo/",
		k.Initialize():           "/service/demo/initialize",
		k.Config():               "/service/demo/config",
		k.Leader():               "/service/demo/leader",
		k.Status():               "/service/demo/status",
		k.History():              "/service/demo/history",
		k.Sync():                 "/service/demo/sync",
		k.Failover():             "/service/demo/failover",
		k.Failsafe():             "/service/demo/failsafe",
		k.Member("pg1"):          "/service/demo/members/pg1",
		k.MembersPrefix():        "/service/demo/members/",
		k.SwitchoverLock():       "/service/demo/switchover",
		k.Switchover("42"):       "/service/demo/switchovers/42",
		k.Decision("0000000007"): "/service/demo/decisions/0000000007",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if d := NewKeys("service", "demo"); d != k {
		t.Errorf("default namespace %q differs from /service/: %q", d.Prefix(), k.Prefix())
	}
	deb := NewKeys("/postgresql-common/", "15-main")
	if got := deb.Leader(); got != "/postgresql-common/15-main/leader" {
		t.Errorf("Debian layout leader = %q", got)
	}
	if got := NewKeys("//a//", "/b/").Prefix(); got != "/a/b/" {
		t.Errorf("slash runs not collapsed: %q", got)
	}
	if got := k.Name("/service/demo/members/pg2"); got != "members/pg2" {
		t.Errorf("Name = %q", got)
	}
	if got := k.Name("/service/demo2/leader"); got != "" {
		t.Errorf("Name outside prefix = %q", got)
	}
}

func TestKeysChange(t *testing.T) {
	k := NewKeys("/service/", "demo")
	for key, want := range map[string]Change{
		k.Leader():                    ChangeLeader,
		k.Config():                    ChangeConfig,
		k.Member("pg1"):               ChangeMembers,
		k.Status():                    ChangeStatus,
		k.Failover():                  ChangeFailover,
		k.Sync():                      ChangeSync,
		k.History():                   ChangeHistory,
		k.Initialize():                ChangeInitialize,
		k.SwitchoverLock():            ChangeSwitchover,
		k.Switchover("1"):             ChangeSwitchover,
		k.Failsafe():                  ChangeOther,
		k.Decision("1"):               ChangeOther,
		k.Prefix() + "members/a/b":    ChangeOther,
		k.Prefix() + "members/":       ChangeOther,
		"/service/demo2/leader":       0,
		"/service/demo/optime/leader": ChangeOther,
	} {
		if got := k.Change(key); got != want {
			t.Errorf("Change(%q) = %v, want %v", key, got, want)
		}
	}
	if s := (ChangeLeader | ChangeReload).String(); s != "leader|reload" {
		t.Errorf("String = %q", s)
	}
}
