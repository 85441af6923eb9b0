package routing

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regent-ha/regent/internal/atomicfile"
	"github.com/regent-ha/regent/internal/pgroup"
)

// PgxConsole talks to PgBouncer's admin console, which speaks only the
// simple query protocol; one connection per command keeps no state that
// a restarted PgBouncer could invalidate.
type PgxConsole struct{}

// Exec connects to admin and runs command; both bounded by ctx.
func (PgxConsole) Exec(ctx context.Context, admin, command string) error {
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return fmt.Errorf("admin connection string: %w", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to the admin console: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	_, err = conn.Exec(ctx, command)
	return err
}

// SocketAPI talks to HAProxy's runtime API: one command per connection
// (non-interactive mode: HAProxy answers and closes).
type SocketAPI struct{}

// Send writes command to socket (a unix path, or host:port) and reads the
// answer until HAProxy closes the connection; bounded by ctx.
func (SocketAPI) Send(ctx context.Context, socket, command string) (string, error) {
	network := "tcp"
	if strings.HasPrefix(socket, "/") {
		network = "unix"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, socket)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", socket, err)
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", fmt.Errorf("send to %s: %w", socket, err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		return string(answer), fmt.Errorf("read from %s: %w", socket, err)
	}
	return string(answer), nil
}

// ExecCommander runs a hook in its own process group, killed as a whole
// when ctx ends.
type ExecCommander struct{}

// Run runs argv with env added to the agent's environment.
func (ExecCommander) Run(ctx context.Context, argv, env []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	pgroup.Own(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, lastLine(string(out)))
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[len(s)-200:]
	}
	return s
}

// WriteFileAtomic replaces path with data (atomicfile), so PgBouncer
// never reads a half-written file. Mode 0644: PgBouncer may run as
// another user.
func WriteFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o644, nil)
}
