package chaos

import (
	"net"
	"os/exec"
	"testing"

	"github.com/regent-ha/regent/internal/netns"
	"github.com/regent-ha/regent/internal/proc"
)

// TestInNetnsKeepsForkingThreadsAlive: agents and etcd members are forked
// with Pdeathsig, which fires when the forking thread ends. proc.InNetns must
// hand its threads back to the runtime (a later call may land on a thread
// that forked a child): a version that let them end killed agents and etcd
// members at random once the link proxies started dialing.
func TestInNetnsKeepsForkingThreadsAlive(t *testing.T) {
	requireEnvironment(t)
	ctx := t.Context()
	nw, err := netns.New(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close(ctx)
	h, err := nw.AddHost(ctx, "nstest", 10)
	if err != nil {
		t.Fatal(err)
	}
	var children []*proc.Proc
	for range 8 { // one per thread the runtime is likely to have
		p, err := proc.Start(proc.Netns(h.Path), exec.CommandContext(ctx, "sleep", "60"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, p)
	}
	defer func() {
		for _, p := range children {
			_ = p.Kill()
		}
	}()
	for range 500 {
		if err := proc.InNetns(h.Path, func() error {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err == nil {
				l.Close()
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range children {
		if p.Exited() {
			t.Fatalf("child %d (pid %d) died while InNetns ran: %v", i, p.Pid(), p.Err())
		}
	}
}
