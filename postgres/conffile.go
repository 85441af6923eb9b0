package postgres

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	confFile     = "postgresql.conf"
	baseConfFile = "postgresql.base.conf"
	hbaFile      = "pg_hba.conf"
	standbyFile  = "standby.signal"
	// managedHeader starts every file Regent generates.
	managedHeader = "# Managed by Regent"
	// socketDir is the default unix_socket_directories (PostgreSQL's own
	// upstream default; override it in postgres.parameters). Not the data
	// dir: pg_rewind fetches every file of the source's data dir and fails
	// on a socket ("could not open file .s.PGSQL.5432"), and pg_basebackup
	// warns about it.
	socketDir = "/tmp"
)

// Upstream is the member a standby streams from.
type Upstream struct {
	Member string
	Host   string
	Port   int
	// Remote: the upstream is another cluster's primary (standby_cluster),
	// not a member: its slot is Slot ("" streams without one), its
	// restore_command RestoreCommand (else postgres.recovery_conf's), and
	// a copy of it is made with Methods (else create_replica_methods).
	// A Remote without Host replicates from the archive only.
	Remote         bool
	Slot           string
	RestoreCommand string
	Methods        []string
}

// slotName is the primary_slot_name a standby of up uses ("" for none).
func (up *Upstream) slotName(member string) string {
	if up.Remote {
		return up.Slot
	}
	return SlotName(member)
}

// recovery is the recovery block of postgresql.conf.
type recovery struct {
	standby  bool
	upstream *Upstream
	// restore: the archive recovery settings of a bootstrap from a backup
	// (not a standby: it ends in a promotion).
	restore map[string]string
}

// setting is one name = value line.
type setting struct{ name, value string }

// defaultSettings are Regent's defaults, already quoted, in file order.
func (i *Instance) defaultSettings() []setting {
	host, port := splitHostPort(i.cfg.Listen)
	listen := host
	if listen == "" {
		listen = "*"
	}
	q := func(s string) string { v, _ := quoteGUCString(s); return v }
	return []setting{
		{"listen_addresses", q(listen)},
		{"port", strconv.Itoa(port)},
		{"unix_socket_directories", q(socketDir)},
		{"cluster_name", q(i.name)},
		{"wal_level", "replica"},
		{"hot_standby", "on"},
		{"max_wal_senders", "10"},
		{"max_replication_slots", "10"},
		{"wal_keep_size", q("128MB")},
		{"wal_log_hints", "on"},
		{"hot_standby_feedback", "on"},
		// A replica whose upstream vanished (failover, switchover) retries
		// every second instead of PostgreSQL's 5 s: repointing is faster.
		{"wal_retrieve_retry_interval", q("1s")},
		// Standbys report their flush position at least every second: when
		// synchronous_standby_names changes, commits waiting on a standby
		// that left are released by the next report of one that stays.
		{"wal_receiver_status_interval", q("1s")},
		{"password_encryption", q("scram-sha-256")},
		{"logging_collector", "off"},
		{"log_destination", q("stderr")},
	}
}

// renderConf renders Regent's postgresql.conf.
func (i *Instance) renderConf(rec recovery) (string, error) {
	var b strings.Builder
	b.WriteString(managedHeader + ": rewritten on every configuration change. Do not edit;\n")
	b.WriteString("# set postgres.parameters in regent.yml (initdb's settings are in " + baseConfFile + ").\n")
	b.WriteString("include '" + baseConfFile + "'\n\n# Regent defaults\n")
	overridden := func(name string) bool {
		_, local := i.cfg.Parameters[name]
		_, dyn := i.dynamic[name]
		return local || dyn
	}
	for _, s := range i.defaultSettings() {
		if !overridden(s.name) {
			fmt.Fprintf(&b, "%s = %s\n", s.name, s.value)
		}
	}
	// Local parameters override dynamic ones, except the settings every
	// member must share with the primary, where the cluster's value wins
	// (as in Patroni).
	localWins, dynamicWins := map[string]any{}, map[string]any{}
	for name := range i.cfg.Parameters {
		if _, shared := clusterWideGUCs[name]; shared {
			if _, ok := i.dynamic[name]; ok {
				dynamicWins[name] = true
				continue
			}
		}
		localWins[name] = true
	}
	for _, sec := range []struct {
		title  string
		params map[string]any
		skip   map[string]any
	}{
		{"dynamic configuration (postgresql.parameters)", i.dynamic, localWins},
		{"postgres.parameters", i.cfg.Parameters, dynamicWins},
	} {
		if len(sec.params) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n# %s\n", sec.title)
		for _, name := range slices.Sorted(maps.Keys(sec.params)) {
			if _, ok := sec.skip[name]; ok {
				continue
			}
			v, err := QuoteGUC(sec.params[name])
			if err != nil {
				return "", fmt.Errorf("parameter %s: %w", name, err)
			}
			fmt.Fprintf(&b, "%s = %s\n", name, v)
		}
	}
	if rec.standby {
		b.WriteString(i.renderStandbyFloor())
	}
	if i.syncNames != nil {
		v, _ := quoteGUCString(*i.syncNames)
		fmt.Fprintf(&b, "\n# Synchronous replication (managed by Regent's synchronous mode)\nsynchronous_standby_names = %s\n", v)
	}
	b.WriteString(i.renderRecovery(rec))
	return b.String(), nil
}

// clusterWideGUCs must match the primary on every member; the dynamic
// configuration's value wins over a local one.
var clusterWideGUCs = map[string]bool{"max_connections": true, "max_worker_processes": true, "max_wal_senders": true,
	"max_prepared_transactions": true, "max_locks_per_transaction": true, "wal_level": true, "track_commit_timestamp": true}

// pgDefaults are PostgreSQL's defaults of the settings a standby must keep
// at least as high as the primary.
var pgDefaults = map[string]int64{"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 10,
	"max_prepared_transactions": 0, "max_locks_per_transaction": 64}

// SetStandbyFloor records the primary's values from pg_control
// (ControlData.PrimarySettings): a standby configured lower would refuse to
// start ("insufficient parameter settings"), so it runs with the higher
// value until it has replayed the primary's change (Patroni does the same).
// It reports whether the floor raises any configured value.
func (i *Instance) SetStandbyFloor(settings map[string]int64) (raises bool) {
	i.floor = settings
	for name, primary := range settings {
		if i.configuredInt(name) < primary {
			raises = true
		}
	}
	return raises
}

// renderStandbyFloor raises the settings below the primary's.
func (i *Instance) renderStandbyFloor() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(i.floor)) {
		primary := i.floor[name]
		if cur := i.configuredInt(name); cur < primary {
			if b.Len() == 0 {
				b.WriteString("\n# Standby: not below the primary's values in pg_control (until replayed)\n")
			}
			fmt.Fprintf(&b, "%s = %d\n", name, primary)
		}
	}
	return b.String()
}

// configuredInt is the value the file sets for name (as renderConf picks
// it, then Regent's defaults, then PostgreSQL's).
func (i *Instance) configuredInt(name string) int64 {
	order := []map[string]any{i.cfg.Parameters, i.dynamic}
	if clusterWideGUCs[name] {
		order = []map[string]any{i.dynamic, i.cfg.Parameters}
	}
	for _, src := range order {
		if v, ok := src[name]; ok {
			if n, err := strconv.ParseInt(strings.Trim(fmt.Sprint(v), "'"), 10, 64); err == nil {
				return n
			}
		}
	}
	for _, d := range i.defaultSettings() {
		if d.name == name {
			if n, err := strconv.ParseInt(d.value, 10, 64); err == nil {
				return n
			}
		}
	}
	return pgDefaults[name]
}

// SetSynchronousStandbyNames sets synchronous_standby_names in Regent's
// postgresql.conf (value "" = asynchronous, "*" = any standby, or a list
// such as `pg2` or `2 (pg2,pg3)`), keeping the current recovery block.
// changed reports a new file: the caller reloads, no restart is needed.
func (i *Instance) SetSynchronousStandbyNames(value string) (changed bool, err error) {
	if i.syncNames != nil && *i.syncNames == value {
		return false, nil
	}
	i.syncNames = &value
	if !i.recoveryKnown {
		return false, nil // written with the next ConfigurePrimary/ConfigureStandby
	}
	changed, err = i.writeConfigFiles(i.recovery)
	if err != nil {
		return false, fmt.Errorf("synchronous_standby_names: %w", err)
	}
	return changed, nil
}

// Reconfigure rewrites postgresql.conf from the current settings (after
// SetDynamicParameters), keeping the recovery block; the caller reloads
// when it changed.
func (i *Instance) Reconfigure() (changed bool, err error) {
	if empty, err := i.DataDirEmpty(); err != nil || empty || !i.recoveryKnown {
		// Before the first ConfigurePrimary/ConfigureStandby of this process
		// the role is unknown: rewriting now could drop primary_conninfo.
		return false, err
	}
	changed, err = i.writeConfigFiles(i.recovery)
	if err != nil {
		return false, fmt.Errorf("reconfigure: %w", err)
	}
	return changed, nil
}

// SynchronousStandbyNames returns the value Regent last wrote ("" when none).
func (i *Instance) SynchronousStandbyNames() string {
	if i.syncNames == nil {
		return ""
	}
	return *i.syncNames
}

// renderRecovery renders the recovery block.
//
// recovery_target_timeline = 'latest' is written for a primary too: it is
// PostgreSQL's default and ignored outside recovery, but removing it from
// the file after a promote makes a reload flag it as pending restart.
func (i *Instance) renderRecovery(rec recovery) string {
	var b strings.Builder
	switch {
	case !rec.standby && len(rec.restore) > 0:
		b.WriteString("\n# Recovery: bootstrap from a backup\n")
		for _, k := range slices.Sorted(maps.Keys(rec.restore)) {
			v, _ := quoteGUCString(rec.restore[k])
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	case !rec.standby:
		b.WriteString("\n# Recovery: none (primary)\n")
	case rec.upstream == nil:
		b.WriteString("\n# Recovery: standby without upstream\n")
	case i.noStream:
		fmt.Fprintf(&b, "\n# Recovery: standby of %s from the archive only (nostream)\n", rec.upstream.Member)
	case rec.upstream.Remote && rec.upstream.Host == "":
		b.WriteString("\n# Recovery: standby leader of a remote cluster, from its archive only\n")
	default:
		up := rec.upstream
		fmt.Fprintf(&b, "\n# Recovery: standby of %s\n", up.Member)
		conninfo := connString(
			"host", up.Host,
			"port", strconv.Itoa(up.Port),
			"user", i.cfg.Replication.Username,
			"password", i.cfg.Replication.Password.Reveal(),
			"application_name", i.name,
			"connect_timeout", "2",
		)
		ci, _ := quoteGUCString(conninfo)
		fmt.Fprintf(&b, "primary_conninfo = %s\n", ci)
		if name := up.slotName(i.name); name != "" {
			slot, _ := quoteGUCString(name)
			fmt.Fprintf(&b, "primary_slot_name = %s\n", slot)
		}
	}
	if rec.standby {
		// The archive lets a replica that fell behind the WAL its upstream
		// keeps catch up without a new copy (PostgreSQL alternates between
		// the archive and streaming by itself). A standby leader uses the
		// remote cluster's archive when standby_cluster names one.
		restore := i.cfg.RecoveryConf.RestoreCommand
		if up := rec.upstream; up != nil && up.Remote && up.RestoreCommand != "" {
			restore = up.RestoreCommand
		}
		for _, kv := range [][2]string{
			{"restore_command", restore},
			{"archive_cleanup_command", i.cfg.RecoveryConf.ArchiveCleanupCommand},
		} {
			if kv[1] != "" {
				q, _ := quoteGUCString(kv[1])
				fmt.Fprintf(&b, "%s = %s\n", kv[0], q)
			}
		}
	}
	if _, set := rec.restore["recovery_target_timeline"]; !set {
		b.WriteString("recovery_target_timeline = 'latest'\n")
	}
	return b.String()
}

// writeConfigFiles makes sure postgresql.base.conf exists (moving a
// foreign postgresql.conf there) and writes Regent's postgresql.conf.
func (i *Instance) writeConfigFiles(rec recovery) (changed bool, err error) {
	i.recovery, i.recoveryKnown = rec, true
	if err := i.ensureBaseConf(); err != nil {
		return false, err
	}
	content, err := i.renderConf(rec)
	if err != nil {
		return false, err
	}
	return i.writeFileAtomic(filepath.Join(i.cfg.DataDir, confFile), []byte(content), 0o600)
}

// ensureBaseConf keeps initdb's postgresql.conf as postgresql.base.conf.
// A postgresql.conf Regent did not write becomes the base file; when there
// is neither, the base file is created empty.
func (i *Instance) ensureBaseConf() error {
	base := filepath.Join(i.cfg.DataDir, baseConfFile)
	if _, err := os.Stat(base); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", base, err)
	}
	conf := filepath.Join(i.cfg.DataDir, confFile)
	data, err := os.ReadFile(conf)
	switch {
	case err == nil && !strings.HasPrefix(string(data), managedHeader):
		if err := os.Rename(conf, base); err != nil {
			return fmt.Errorf("keep initdb's configuration: %w", err)
		}
		return nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read %s: %w", conf, err)
	}
	_, err = i.writeFileAtomic(base, []byte("# Base configuration (empty: none was found).\n"), 0o600)
	return err
}

// ConfigurePrimary writes postgresql.conf without a recovery block and
// removes standby.signal. changed reports whether anything changed (the
// agent then reloads).
func (i *Instance) ConfigurePrimary() (changed bool, err error) {
	changed, err = i.writeConfigFiles(recovery{})
	if err != nil {
		return false, fmt.Errorf("configure primary: %w", err)
	}
	removed, err := removeFile(filepath.Join(i.cfg.DataDir, standbyFile))
	if err != nil {
		return false, fmt.Errorf("configure primary: %w", err)
	}
	return changed || removed, nil
}

// ConfigureStandby writes standby.signal and a recovery block following up
// (nil: a standby with no upstream, which stays read-only):
// primary_conninfo with the replication credentials and application_name =
// member name, primary_slot_name = SlotName(member name), and
// recovery_target_timeline = 'latest'. changed reports whether anything
// changed; PostgreSQL ≥ 13 applies a new primary_conninfo on reload.
func (i *Instance) ConfigureStandby(up *Upstream) (changed bool, err error) {
	changed, err = i.writeConfigFiles(recovery{standby: true, upstream: up})
	if err != nil {
		return false, fmt.Errorf("configure standby: %w", err)
	}
	signal := filepath.Join(i.cfg.DataDir, standbyFile)
	if _, err := os.Stat(signal); errors.Is(err, os.ErrNotExist) {
		if _, err := i.writeFileAtomic(signal, nil, 0o600); err != nil {
			return false, fmt.Errorf("configure standby: %w", err)
		}
		changed = true
	} else if err != nil {
		return false, fmt.Errorf("configure standby: %w", err)
	}
	return changed, nil
}
