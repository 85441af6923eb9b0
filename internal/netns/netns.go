package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// namePrefix starts the name of every namespace, veth and bridge we create,
// followed by the creating test process's pid in base 36 and a dash: a
// sweep can tell leftovers of a dead run from those of a live one.
const namePrefix = "rgc"

// subnetBase is the private range we carve /24s from, only on our bridge
// and inside our namespaces.
const subnetBase = "10.201."

// Network is a bridge in the root namespace and the namespaces attached to
// it. Methods are safe for concurrent use.
type Network struct {
	tag    string // namePrefix + pid in base 36
	bridge string
	subnet int // the third octet: 10.201.<subnet>.0/24
	logf   func(format string, args ...any)

	mu     sync.Mutex
	hosts  []*Host
	blocks map[block]bool
}

// block is one blackhole route: packets from host `from` to address to are
// dropped (inside from's namespace).
type block struct {
	from string // host name
	to   string // IP address
}

// Host is one network namespace attached to the bridge.
type Host struct {
	Name string // "pg1", "etcd2"
	NS   string // namespace name
	IP   string // its address on the bridge
	veth string // the root-namespace end of its veth pair
	Path string // /run/netns/<NS>, for proc.Netns and proc.InNetns
}

// New sweeps leftovers of dead runs, then creates the bridge with
// the address .1 of a /24 of 10.201.0.0/16 that no interface uses yet.
func New(ctx context.Context, logf func(string, ...any)) (*Network, error) {
	tag := namePrefix + strconv.FormatInt(int64(os.Getpid()), 36)
	sweep(ctx, tag, logf)
	n := &Network{tag: tag, bridge: tag + "-br", logf: logf, blocks: map[block]bool{}}
	sub, err := freeSubnet(ctx)
	if err != nil {
		return nil, err
	}
	n.subnet = sub
	steps := [][]string{
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", n.Addr(1) + "/24", "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			n.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return n, nil
}

// Addr is the address .host of the bridge's /24.
func (n *Network) Addr(host int) string { return fmt.Sprintf("%s%d.%d", subnetBase, n.subnet, host) }

// Subnet is the bridge's network, "10.201.N.0/24".
func (n *Network) Subnet() string { return n.Addr(0) + "/24" }

// Bridge is the bridge's interface name.
func (n *Network) Bridge() string { return n.bridge }

// ClientIP is the test process's address on the bridge.
func (n *Network) ClientIP() string { return n.Addr(1) }

// freeSubnet picks a /24 of 10.201.0.0/16 no local address is in (another
// run of this suite may be using one), starting from a pid-derived guess.
func freeSubnet(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return 0, fmt.Errorf("ip addr show: %w", err)
	}
	start := os.Getpid() % 200
	for i := range 200 {
		sub := 20 + (start+i)%200
		if !bytes.Contains(out, fmt.Appendf(nil, " %s%d.", subnetBase, sub)) {
			return sub, nil
		}
	}
	return 0, errors.New("no free /24 in 10.201.0.0/16")
}

// AddHost creates namespace <tag>-<name> with loopback up and a veth
// pair to the bridge; its end inside is eth0 with address 10.201.N.octet.
func (n *Network) AddHost(ctx context.Context, name string, octet int) (*Host, error) {
	h := &Host{Name: name, NS: n.tag + "-" + name, IP: n.Addr(octet), veth: n.tag + "-" + name}
	h.Path = "/run/netns/" + h.NS
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"link", "set", h.veth, "master", n.bridge},
		{"link", "set", h.veth, "up"},
		{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return nil, fmt.Errorf("add host %s: %w", name, err)
		}
	}
	return h, nil
}

// Block drops every packet host from sends to address to (a blackhole
// route in from's namespace). Established connections stall; new ones
// fail. Blocking twice is a no-op.
func (n *Network) Block(ctx context.Context, from *Host, to string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := block{from: from.Name, to: to}
	if n.blocks[b] {
		return nil
	}
	if err := ip(ctx, "-n", from.NS, "route", "add", "blackhole", to+"/32"); err != nil {
		return err
	}
	n.blocks[b] = true
	return nil
}

// Cut blocks both directions between a and b.
func (n *Network) Cut(ctx context.Context, a, b *Host) error {
	return errors.Join(n.Block(ctx, a, b.IP), n.Block(ctx, b, a.IP))
}

// UnblockAll removes every blackhole route Block installed.
func (n *Network) UnblockAll(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for b := range n.blocks {
		h := n.hostLocked(b.from)
		if err := ip(ctx, "-n", h.NS, "route", "del", "blackhole", b.to+"/32"); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(n.blocks, b)
	}
	return errors.Join(errs...)
}

func (n *Network) hostLocked(name string) *Host {
	for _, h := range n.hosts {
		if h.Name == name {
			return h
		}
	}
	panic("netns: unknown host " + name)
}

// Detach unplugs h's veth from the bridge: h reaches no one and no one
// reaches h, the test process included. Attach plugs it back.
func (n *Network) Detach(ctx context.Context, h *Host) error {
	return ip(ctx, "link", "set", h.veth, "nomaster")
}

// Attach plugs h's veth back into the bridge.
func (n *Network) Attach(ctx context.Context, h *Host) error {
	return ip(ctx, "link", "set", h.veth, "master", n.bridge)
}

// Close deletes the veths, the namespaces and the bridge. Processes still
// inside a namespace must be gone first (a namespace lives on while one
// is in it). Errors are logged: it runs in cleanups.
func (n *Network) Close(ctx context.Context) {
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	for _, h := range hosts {
		if err := ip(ctx, "link", "del", h.veth); err != nil && !isNotFound(err) {
			n.logf("netns: %v", err)
		}
		if err := ip(ctx, "netns", "del", h.NS); err != nil && !isNotFound(err) {
			n.logf("netns: %v", err)
		}
	}
	if err := ip(ctx, "link", "del", n.bridge); err != nil && !isNotFound(err) {
		n.logf("netns: %v", err)
	}
}

// ip runs `ip args…` and returns its output in the error.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func isNotFound(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find device") || strings.Contains(s, "No such file") ||
		strings.Contains(s, "does not exist")
}

// HealAll heals every partition before teardown: blackholes and detached
// veths (errors are irrelevant then).
func (n *Network) HealAll(ctx context.Context) {
	_ = n.UnblockAll(ctx)
	n.mu.Lock()
	hosts := append([]*Host(nil), n.hosts...)
	n.mu.Unlock()
	for _, h := range hosts {
		_ = n.Attach(ctx, h)
	}
}
