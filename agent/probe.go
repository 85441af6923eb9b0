package agent

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/regent-ha/regent/dcs"
)

// ProbeLeader asks the leader's REST API (GET api_url) and its postmaster
// (pgAnswers) at once, both within ctx: the fast path's look at a leader
// (LeaderProber).
func (h *HTTPPeers) ProbeLeader(ctx context.Context, m dcs.Member) LeaderProbe {
	var p LeaderProbe
	var wg sync.WaitGroup
	wg.Go(func() { p.APIReachable = m.APIURL != "" && h.fetchOne(ctx, "", m.APIURL).Reachable })
	wg.Go(func() {
		host, port, err := parseConnURL(m.ConnURL)
		p.PGReachable = err == nil && pgAnswers(ctx, net.JoinHostPort(host, strconv.Itoa(port)))
	})
	wg.Wait()
	return p
}

// sslRequest is PostgreSQL's SSLRequest packet: length 8, code 80877103.
var sslRequest = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)

// pgAnswers reports whether the postmaster at addr answers an SSLRequest
// ('S' or 'N') within ctx. A TCP connect alone proves nothing: the kernel
// of a frozen host (or a stopped postmaster's listen backlog) completes
// the handshake; only the postmaster itself answers. No authentication,
// no backend is started.
func pgAnswers(ctx context.Context, addr string) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(peerTimeout))
	}
	if _, err := conn.Write(sslRequest); err != nil {
		return false
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		return false
	}
	return b[0] == 'S' || b[0] == 'N'
}
