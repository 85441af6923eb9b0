package routerproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Find locates a router binary (pgbouncer, haproxy) on PATH, else in
// /usr/sbin, where Debian installs both (a non-root PATH often lacks it).
// The error names the Debian package to install.
func Find(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	path := filepath.Join("/usr/sbin", name)
	if st, err := os.Stat(path); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return path, nil
	}
	return "", fmt.Errorf("%s is not installed (not on PATH nor in /usr/sbin): install the Debian package %s (apt-get install -y %s)", name, name, name)
}

// PgBouncer describes a local PgBouncer: clients and its admin console
// (database pgbouncer) on ListenAddr:Port, trust authentication for
// AdminUser (local throwaway clusters only), transaction pooling (PAUSE
// waits for transactions, not sessions), and IncludeFile — the file
// Regent rewrites with the [databases] section — %included last.
type PgBouncer struct {
	// ListenAddr is the address it listens on (default 127.0.0.1; the
	// chaos suite's is in a network namespace of its own).
	ListenAddr  string
	Port        int
	Dir         string // its pid file, unix socket and userlist.txt
	AdminUser   string
	IncludeFile string
}

// INI is the pgbouncer.ini text.
func (p PgBouncer) INI() string {
	return fmt.Sprintf(`[pgbouncer]
listen_addr = %s
listen_port = %d
unix_socket_dir = %s
pidfile = %s/pgbouncer.pid
auth_type = trust
auth_file = %s
admin_users = %s
pool_mode = transaction
default_pool_size = 10
max_client_conn = 100
server_login_retry = 1
%%include %s
`, p.addr(), p.Port, p.Dir, p.Dir, p.UserListPath(), p.AdminUser, p.IncludeFile)
}

// UserListPath is where UserList goes.
func (p PgBouncer) UserListPath() string { return filepath.Join(p.Dir, "userlist.txt") }

// UserList is the auth_file text: AdminUser, no password (trust).
func (p PgBouncer) UserList() string { return fmt.Sprintf("%q \"\"\n", p.AdminUser) }

// AdminConnString is the admin console's connection string, as the
// agents' routing.pgbouncer[].admin takes it.
func (p PgBouncer) AdminConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=pgbouncer sslmode=disable connect_timeout=2", p.addr(), p.Port, p.AdminUser)
}

func (p PgBouncer) addr() string {
	if p.ListenAddr == "" {
		return "127.0.0.1"
	}
	return p.ListenAddr
}

// HAProxyAdminSocket is a global section adding an admin-level runtime
// API socket (`stats socket … level admin`), mode 666 so agents running
// as another OS user can use it.
func HAProxyAdminSocket(socket string) string {
	return fmt.Sprintf("global\n    stats socket %s mode 666 level admin\n", socket)
}
