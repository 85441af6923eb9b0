package dcs

import (
	"regexp"
	"strings"
)

// Keys builds the etcd key names of one cluster, in Patroni's layout
// (patroni-compat.md §1.1): "/" + namespace + "/" + scope, runs of "/"
// collapsed, no trailing slash; a key is base + "/" + name.
type Keys struct {
	base string
}

var slashes = regexp.MustCompile(`/+`)

// NewKeys returns the key layout for namespace and scope.
// NewKeys("/service/", "demo").Leader() == "/service/demo/leader".
func NewKeys(namespace, scope string) Keys {
	base := slashes.ReplaceAllString("/"+namespace+"/"+scope, "/")
	return Keys{base: strings.TrimSuffix(base, "/")}
}

// Prefix is the cluster prefix used to list and watch every key: base + "/".
func (k Keys) Prefix() string { return k.base + "/" }

func (k Keys) key(name string) string { return k.base + "/" + name }

func (k Keys) Initialize() string          { return k.key("initialize") }
func (k Keys) Config() string              { return k.key("config") }
func (k Keys) Leader() string              { return k.key("leader") }
func (k Keys) Status() string              { return k.key("status") }
func (k Keys) History() string             { return k.key("history") }
func (k Keys) Sync() string                { return k.key("sync") }
func (k Keys) Failover() string            { return k.key("failover") }
func (k Keys) Failsafe() string            { return k.key("failsafe") }
func (k Keys) MembersPrefix() string       { return k.key("members/") }
func (k Keys) Member(name string) string   { return k.key("members/" + name) }
func (k Keys) SwitchoverLock() string      { return k.key("switchover") }
func (k Keys) SwitchoversPrefix() string   { return k.key("switchovers/") }
func (k Keys) Switchover(id string) string { return k.key("switchovers/" + id) }
func (k Keys) DecisionsPrefix() string     { return k.key("decisions/") }
func (k Keys) Decision(seq string) string  { return k.key("decisions/" + seq) }
func (k Keys) SuspectsPrefix() string      { return k.key("suspects/") }
func (k Keys) Suspect(name string) string  { return k.key("suspects/" + name) }

// Name returns the part of key after the cluster prefix ("members/pg1"),
// or "" when key is not under the prefix.
func (k Keys) Name(key string) string {
	name, ok := strings.CutPrefix(key, k.Prefix())
	if !ok {
		return ""
	}
	return name
}
