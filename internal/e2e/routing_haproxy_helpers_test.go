package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/routerproc"
	"github.com/regent-ha/regent/internal/testcluster"
)

// haproxyAdmin prepares a directory the agents (the postgres OS user) can
// reach and an extra HAProxy configuration file adding an admin socket in
// it (`stats socket … level admin`), readable and writable by everyone so
// the agents can use it.
func haproxyAdmin(t *testing.T) (socket, cfgFile string) {
	t.Helper()
	dir := testcluster.OpenTempDir(t)
	socket = filepath.Join(dir, "admin.sock")
	cfgFile = filepath.Join(dir, "admin.cfg")
	if err := os.WriteFile(cfgFile, []byte(routerproc.HAProxyAdminSocket(socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	return socket, cfgFile
}

// stmtAttempt is one statement a client tried through HAProxy.
type stmtAttempt struct {
	at   time.Time // when it was acknowledged (or failed)
	port int       // the PostgreSQL that acknowledged it
	err  error
}

// stmtClients write through an HAProxy write port as a plain application
// does: one connection each, a statement every 10 ms, and on any error a
// new connection at the next tick. Every try that fails — a statement on
// a dead or demoted server, or no connection to be had — is a failed
// statement.
type stmtClients struct {
	mu       sync.Mutex
	attempts []stmtAttempt
	wg       sync.WaitGroup
	stop     context.CancelFunc
}

// stmtTimeout bounds one try (connect or statement): a client gives up on
// a server that does not answer rather than wait for TCP.
const stmtTimeout = time.Second

func startStmtClients(t *testing.T, addr, table string, n int) *stmtClients {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sc := &stmtClients{stop: cancel}
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=postgres sslmode=disable connect_timeout=1",
		host, port, testcluster.SuperuserName, testcluster.SuperuserPassword))
	if err != nil {
		t.Fatal(err)
	}
	var seq sync.Mutex
	id := int64(0)
	for range n {
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					closeQuietly(ctx, conn)
				}
			}()
			testcluster.Every(ctx, 10*time.Millisecond, func() {
				seq.Lock()
				id++
				mine := id
				seq.Unlock()
				var a stmtAttempt
				conn, a = sc.try(ctx, cfg, conn, table, mine)
				if ctx.Err() != nil {
					return // stopping: not a failed try
				}
				sc.mu.Lock()
				sc.attempts = append(sc.attempts, a)
				sc.mu.Unlock()
			})
		}()
	}
	t.Cleanup(sc.Stop)
	return sc
}

// try runs one INSERT, connecting first when needed; the connection is
// dropped after an error.
func (sc *stmtClients) try(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn, table string, id int64) (*pgx.Conn, stmtAttempt) {
	tctx, cancel := context.WithTimeout(ctx, stmtTimeout)
	defer cancel()
	var err error
	if conn == nil {
		if conn, err = pgx.ConnectConfig(tctx, cfg); err != nil {
			return nil, stmtAttempt{at: time.Now(), err: err}
		}
	}
	var port int
	err = conn.QueryRow(tctx, fmt.Sprintf("INSERT INTO %s (id, client) VALUES ($1, 0) RETURNING inet_server_port()", table), id).Scan(&port)
	if err != nil {
		closeQuietly(ctx, conn)
		return nil, stmtAttempt{at: time.Now(), err: err}
	}
	return conn, stmtAttempt{at: time.Now(), port: port}
}

func (sc *stmtClients) Stop() {
	sc.stop()
	sc.wg.Wait()
}

// failedSince counts failed tries at or after since.
func (sc *stmtClients) failedSince(since time.Time) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := 0
	for _, a := range sc.attempts {
		if a.err != nil && !a.at.Before(since) {
			n++
		}
	}
	return n
}

// longestGap is the longest time between two acknowledgements (by any
// client) in [from, to]: the write unavailability the clients saw.
func (sc *stmtClients) longestGap(from, to time.Time) time.Duration {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var acks []time.Time
	for _, a := range sc.attempts {
		if a.err == nil && !a.at.Before(from) && !a.at.After(to) {
			acks = append(acks, a.at)
		}
	}
	slices.SortFunc(acks, time.Time.Compare)
	var longest time.Duration
	for i := 1; i < len(acks); i++ {
		longest = max(longest, acks[i].Sub(acks[i-1]))
	}
	return longest
}

// firstAck returns the first acknowledgement by port at or after since.
func (sc *stmtClients) firstAck(port int, since time.Time) (time.Time, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, a := range sc.attempts {
		if a.err == nil && a.port == port && !a.at.Before(since) {
			return a.at, true
		}
	}
	return time.Time{}, false
}

// waitAcks waits for n acknowledgements by port after since.
func (sc *stmtClients) waitAcks(t *testing.T, port int, since time.Time, n int, what string) {
	t.Helper()
	testcluster.Poll(t, replicateTimeout, what, func(context.Context) error {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		got := 0
		last := errors.New("none")
		for _, a := range sc.attempts {
			if a.err == nil && a.port == port && !a.at.Before(since) {
				got++
			}
			if a.err != nil {
				last = a.err
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d acknowledged by port %d (%d tries; last error: %w)", got, n, port, len(sc.attempts), last)
		}
		return nil
	})
}

// watchPromotion polls n every 5 ms until it is out of recovery and
// returns that instant (≤ 5 ms late) on the channel.
func watchPromotion(t *testing.T, n *testcluster.Node, timeout time.Duration) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	conn := n.DB(t, ctx)
	out := make(chan time.Time, 1)
	go func() {
		defer cancel()
		defer closeQuietly(ctx, conn)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var inRecovery bool
			err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
			if err == nil && !inRecovery {
				out <- time.Now()
				return
			}
			select {
			case <-ctx.Done():
				close(out)
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// watchAnyPromotion watches every node of nodes and reports the first
// one's promotion instant.
func watchAnyPromotion(t *testing.T, nodes []*testcluster.Node, timeout time.Duration) <-chan time.Time {
	t.Helper()
	out := make(chan time.Time, len(nodes))
	var wg sync.WaitGroup
	for _, n := range nodes {
		ch := watchPromotion(t, n, timeout)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if at, ok := <-ch; ok {
				out <- at
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}
