package examples_test

import (
	"net/url"
	"path"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/config"
	"github.com/regent-ha/regent/dcs"
)

// vipConfig is the part of vip-manager's (≥ 2.0) YAML the contract is about.
type vipConfig struct {
	IP           string   `yaml:"ip"`
	Netmask      int      `yaml:"netmask"`
	Interface    string   `yaml:"interface"`
	TriggerKey   string   `yaml:"trigger-key"`
	TriggerValue string   `yaml:"trigger-value"`
	DCSType      string   `yaml:"dcs-type"`
	DCSEndpoints []string `yaml:"dcs-endpoints"`
	Interval     int      `yaml:"interval"`
	ManagerType  string   `yaml:"manager-type"`
	RetryNum     int      `yaml:"retry-num"`
	RetryAfter   int      `yaml:"retry-after"`
}

func readVIP(t *testing.T, name string) vipConfig {
	t.Helper()
	var c vipConfig
	if err := yaml.Unmarshal(readExample(t, name), &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if c.IP == "" || c.Netmask == 0 || c.Interface == "" {
		t.Errorf("%s: ip, netmask and interface are mandatory", name)
	}
	return c
}

// TestVIPManagerMatchesRegent: both vip-manager configs point at what
// examples/regent.yml's member publishes. The etcd variant watches the
// leader key (<namespace><scope>/leader, as dcs.Keys builds it) for the
// member name on the same etcd; the REST variant polls that member's
// /leader for 200.
func TestVIPManagerMatchesRegent(t *testing.T) {
	data := readExample(t, "regent.yml")
	setEnvRefs(t, data)
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	etcd := readVIP(t, "vip-manager/vip-manager.yml")
	if want := dcs.NewKeys(cfg.Namespace, cfg.Scope).Leader(); etcd.TriggerKey != want {
		t.Errorf("vip-manager.yml: trigger-key %q, want the leader key %q", etcd.TriggerKey, want)
	}
	if etcd.TriggerValue != cfg.Name {
		t.Errorf("vip-manager.yml: trigger-value %q, want the member name %q", etcd.TriggerValue, cfg.Name)
	}
	if etcd.DCSType != "etcd" {
		t.Errorf("vip-manager.yml: dcs-type %q, want etcd (v3 in vip-manager ≥ 2.0)", etcd.DCSType)
	}
	if !slices.Equal(etcd.DCSEndpoints, cfg.Etcd.Endpoints) {
		t.Errorf("vip-manager.yml: dcs-endpoints %v, want regent.yml's etcd.endpoints %v", etcd.DCSEndpoints, cfg.Etcd.Endpoints)
	}

	rest := readVIP(t, "vip-manager/vip-manager-patroni.yml")
	if rest.DCSType != "patroni" || rest.TriggerKey != "/leader" || rest.TriggerValue != "200" {
		t.Errorf("vip-manager-patroni.yml: dcs-type %q trigger-key %q trigger-value %q, want patroni /leader 200",
			rest.DCSType, rest.TriggerKey, rest.TriggerValue)
	}
	if len(rest.DCSEndpoints) == 0 {
		t.Fatal("vip-manager-patroni.yml: no dcs-endpoints")
	}
	u, err := url.Parse(rest.DCSEndpoints[0])
	if err != nil || u.Scheme != "http" || u.Host != cfg.RestAPI.ConnectAddress || path.Clean("/"+u.Path) != "/" || u.Path != "" {
		t.Errorf("vip-manager-patroni.yml: dcs-endpoints[0] %q, want http://%s with no path (vip-manager appends trigger-key)",
			rest.DCSEndpoints[0], cfg.RestAPI.ConnectAddress)
	}
}
