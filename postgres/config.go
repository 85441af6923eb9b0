package postgres

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regent-ha/regent/internal/secret"
)

// Defaults applied by Config.SetDefaults.
const (
	DefaultBinDir          = "/usr/lib/postgresql/15/bin"
	DefaultSuperuser       = "postgres"
	DefaultReplicationUser = "replicator"
	DefaultStopTimeout     = 30 * time.Second
)

// Config is the `postgres:` section of regent.yml. The agent decodes it
// strictly, then calls SetDefaults and Validate.
type Config struct {
	DataDir string `yaml:"data_dir"`
	// BinDir holds initdb, pg_ctl, pg_basebackup, pg_rewind and pg_controldata.
	BinDir string `yaml:"bin_dir"`
	// Listen is the host:port PostgreSQL listens on, e.g. 127.0.0.1:5432.
	// A host of "" or "*" listens everywhere.
	Listen string `yaml:"listen"`
	// ConnectAddress is the host:port other members use; default Listen.
	ConnectAddress string      `yaml:"connect_address"`
	Superuser      Credentials `yaml:"superuser"`
	Replication    Credentials `yaml:"replication"`
	// Parameters are extra GUCs; they override Regent's defaults. Strings
	// are written quoted, numbers and booleans bare.
	Parameters map[string]any `yaml:"parameters"`
	// PgHBA lines come first in pg_hba.conf, verbatim, before Regent's own
	// lines (PostgreSQL uses the first match): see WriteHBA, HBAWarnings.
	PgHBA []string `yaml:"pg_hba"`
	// StopTimeout is the budget of the agent's stops: fast, then immediate,
	// then SIGKILL of every server process (the agent never starts smart).
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// CreateReplicaMethods is the ordered list of ways to create a replica
	// (Patroni's create_replica_methods): "basebackup" or the name of a
	// method section (Methods); each is tried until one succeeds.
	CreateReplicaMethods []string `yaml:"create_replica_methods"`
	// Basebackup are extra pg_basebackup options.
	Basebackup BasebackupOptions `yaml:"basebackup"`
	// RecoveryConf goes into a replica's recovery block.
	RecoveryConf RecoveryConf `yaml:"recovery_conf"`
	// Methods are the method sections, keyed by name, written beside the
	// other keys of the section as in Patroni.
	Methods map[string]ReplicaMethod `yaml:",inline"`
}

// Credentials name a PostgreSQL role and its password.
type Credentials struct {
	Username string        `yaml:"username"`
	Password secret.String `yaml:"password"`
}

// SetDefaults fills the unset fields.
func (c *Config) SetDefaults() {
	if c.BinDir == "" {
		c.BinDir = DefaultBinDir
	}
	if c.ConnectAddress == "" {
		c.ConnectAddress = c.Listen
	}
	if c.Superuser.Username == "" {
		c.Superuser.Username = DefaultSuperuser
	}
	if c.Replication.Username == "" {
		c.Replication.Username = DefaultReplicationUser
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
}

// binaries are the programs Regent runs from BinDir.
var binaries = []string{"initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata", "postgres"}

// managedGUCs are settings Regent derives from other keys; setting them in
// parameters would silently break Regent, so Validate refuses them.
var managedGUCs = map[string]string{
	"listen_addresses":          "set postgres.listen instead",
	"port":                      "set postgres.listen instead",
	"primary_conninfo":          "managed by Regent",
	"primary_slot_name":         "managed by Regent",
	"synchronous_standby_names": "managed by Regent (dynamic config synchronous_mode)",
	"recovery_target_timeline":  "managed by Regent",
	"data_directory":            "managed by Regent",
	"hba_file":                  "managed by Regent",
	"config_file":               "managed by Regent",
	"ident_file":                "managed by Regent",
	"hot_standby":               "managed by Regent (replicas are always readable)",
	"recovery_target":           "managed by Regent: a recovery target would stop a replica's replay",
	"recovery_target_lsn":       "managed by Regent: a recovery target would stop a replica's replay",
	"recovery_target_name":      "managed by Regent: a recovery target would stop a replica's replay",
	"recovery_target_time":      "managed by Regent: a recovery target would stop a replica's replay",
	"recovery_target_xid":       "managed by Regent: a recovery target would stop a replica's replay",
	"recovery_target_action":    "managed by Regent: a recovery target would stop a replica's replay",
	"recovery_target_inclusive": "managed by Regent: a recovery target would stop a replica's replay",
}

var gucName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// Validate checks the section; every error names its key with the
// "postgres." prefix. Several errors are joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("postgres.%s: "+format, append([]any{key}, args...)...))
	}
	switch {
	case c.DataDir == "":
		add("data_dir", "required")
	case !filepath.IsAbs(c.DataDir):
		add("data_dir", "%q must be an absolute path", c.DataDir)
	}
	errs = append(errs, validateBinDir(c.BinDir)...)
	if err := checkHostPort(c.Listen); err != nil {
		add("listen", "%w", err)
	}
	if c.ConnectAddress != "" {
		if err := checkHostPort(c.ConnectAddress); err != nil {
			add("connect_address", "%w", err)
		}
	}
	errs = append(errs, c.Superuser.validate("superuser")...)
	errs = append(errs, c.Replication.validate("replication")...)
	if c.Superuser.Username != "" && c.Superuser.Username == c.Replication.Username {
		add("replication.username", "%q must differ from postgres.superuser.username", c.Replication.Username)
	}
	errs = append(errs, validateParameters("parameters", c.Parameters)...)
	for n, line := range c.PgHBA {
		if strings.ContainsAny(line, "\r\n") {
			add(fmt.Sprintf("pg_hba[%d]", n), "must be a single line")
		}
	}
	if c.StopTimeout <= 0 {
		add("stop_timeout", "must be positive, got %s", c.StopTimeout)
	}
	errs = append(errs, c.validateMethods()...)
	return errors.Join(errs...)
}

func validateBinDir(dir string) []error {
	if dir == "" {
		return []error{errors.New("postgres.bin_dir: required")}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return []error{fmt.Errorf("postgres.bin_dir: %s is not a directory", dir)}
	}
	var errs []error
	for _, b := range binaries {
		p := filepath.Join(dir, b)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("postgres.bin_dir: %s not found", p))
		}
	}
	return errs
}

func (cr Credentials) validate(section string) []error {
	var errs []error
	switch {
	case cr.Username == "":
		errs = append(errs, fmt.Errorf("postgres.%s.username: required", section))
	case len(cr.Username) > 63 || strings.ContainsAny(cr.Username, "\x00\r\n"):
		errs = append(errs, fmt.Errorf("postgres.%s.username: %q is not a valid role name", section, cr.Username))
	}
	switch {
	case cr.Password == "":
		errs = append(errs, fmt.Errorf("postgres.%s.password: required", section))
	case strings.ContainsAny(cr.Password.Reveal(), "\x00\r\n"):
		errs = append(errs, fmt.Errorf("postgres.%s.password: must not contain NUL or line breaks", section))
	}
	return errs
}

// validateParameters checks GUC names and values; key is the config key
// ("parameters") used in error messages.
func validateParameters(key string, params map[string]any) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if err := CheckSetting(name, params[name]); err != nil {
			errs = append(errs, fmt.Errorf("postgres.%s.%s: %w", key, name, err))
		}
	}
	return errs
}

// checkHostPort accepts host:port with a numeric port in 1..65535.
func checkHostPort(s string) error {
	if s == "" {
		return errors.New("required")
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not host:port (bad port)", s)
	}
	return nil
}

// splitHostPort splits a validated host:port.
func splitHostPort(s string) (string, int) {
	host, port, _ := net.SplitHostPort(s)
	n, _ := strconv.Atoi(port)
	return host, n
}
