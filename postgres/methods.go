package postgres

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// MethodBasebackup is the built-in replica creation method: pg_basebackup
// from the leader (Patroni's name).
const MethodBasebackup = "basebackup"

// ReplicaMethod is one user-defined replica creation method, Patroni's
// per-method section under postgresql (postgres in regent.yml):
//
//	pgbackrest:
//	  command: /usr/bin/pgbackrest --stanza=main --delta restore
//	  keep_data: true
//	  no_params: true
//
// Other keys are passed to the command as --key=value.
type ReplicaMethod struct {
	// Command is run (through /bin/sh, so it may hold arguments and quoted
	// words) as the PostgreSQL user; default the method's name.
	Command string `yaml:"command"`
	// KeepData leaves a data directory a failed earlier method left behind
	// (pgBackRest --delta can reuse it); otherwise it is emptied first.
	KeepData bool `yaml:"keep_data"`
	// NoLeader (Patroni's no_master too) lets the method run while the
	// cluster has no leader: it does not need a replication connection.
	NoLeader bool `yaml:"no_leader"`
	NoMaster bool `yaml:"no_master"`
	// NoParams passes neither the standard arguments (--scope, --role,
	// --datadir, --connstring) nor Options.
	NoParams bool `yaml:"no_params"`
	// Options are the section's other keys, passed as --key=value.
	Options map[string]string `yaml:",inline"`
}

// worksWithoutLeader: Patroni's replica_method_can_work_without_replication_connection.
func (m ReplicaMethod) worksWithoutLeader() bool { return m.NoLeader || m.NoMaster }

// RecoveryConf is Patroni's postgresql.recovery_conf: settings written
// into a replica's recovery block. restore_command lets a replica that
// fell behind the WAL its leader keeps catch up from the archive: with it,
// PostgreSQL alternates between streaming and the archive by itself.
type RecoveryConf struct {
	RestoreCommand        string `yaml:"restore_command"`
	ArchiveCleanupCommand string `yaml:"archive_cleanup_command"`
}

// BasebackupOptions are extra pg_basebackup options, Patroni's
// postgresql.basebackup: a list of words and one-key maps
// (["verbose", {"max-rate": "100M"}]) or a map ({"max-rate": "100M"}).
// Each becomes --name or --name=value, after Regent's own arguments.
type BasebackupOptions []string

// basebackupReserved are options Regent sets itself (long and short names).
var basebackupReserved = map[string]bool{
	"pgdata": true, "D": true, "format": true, "F": true, "wal-method": true, "X": true,
	"host": true, "h": true, "port": true, "p": true, "username": true, "U": true,
	"dbname": true, "d": true, "no-password": true, "w": true, "password": true, "W": true,
}

// UnmarshalYAML reads Patroni's two forms.
func (b *BasebackupOptions) UnmarshalYAML(n *yaml.Node) error {
	out, err := toolOptions(n, basebackupReserved)
	*b = out
	return err
}

// InitDBOptions are extra initdb options, Patroni's bootstrap.initdb, in
// the same forms as BasebackupOptions (["data-checksums", {"locale": "C"}]);
// they come after Regent's own (-E UTF8, --data-checksums,
// --auth=scram-sha-256), so they may override those.
type InitDBOptions []string

// initdbReserved are initdb options Regent sets and must keep.
var initdbReserved = map[string]bool{
	"pgdata": true, "D": true, "username": true, "U": true, "pwfile": true, "pwprompt": true, "W": true,
}

// UnmarshalYAML reads Patroni's two forms.
func (o *InitDBOptions) UnmarshalYAML(n *yaml.Node) error {
	out, err := toolOptions(n, initdbReserved)
	*o = out
	return err
}

// toolOptions reads a list of words and one-key maps, or a map, into
// --name and --name=value arguments, refusing the reserved names.
func toolOptions(n *yaml.Node, reserved map[string]bool) ([]string, error) {
	var out []string
	add := func(k string, v *yaml.Node) error {
		if reserved[k] {
			return fmt.Errorf("option %q is set by Regent", k)
		}
		if v == nil {
			out = append(out, "--"+k)
			return nil
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("option %q: value must be a scalar", k)
		}
		out = append(out, "--"+k+"="+v.Value)
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := add(n.Content[i].Value, n.Content[i+1]); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			var err error
			switch {
			case item.Kind == yaml.ScalarNode:
				err = add(item.Value, nil)
			case item.Kind == yaml.MappingNode && len(item.Content) == 2:
				err = add(item.Content[0].Value, item.Content[1])
			default:
				err = errors.New("each item must be a word or a one-key map")
			}
			if err != nil {
				return nil, err
			}
		}
	default:
		return nil, errors.New("must be a list or a map of options")
	}
	return out, nil
}

// ReplicaMethods is the ordered list of methods to try for a new replica
// (Patroni's create_replica): create_replica_methods, default
// [basebackup]; without a leader only the methods that need no
// replication connection (no_leader), never basebackup.
func (c Config) ReplicaMethods(haveLeader bool) []string {
	methods := c.CreateReplicaMethods
	if len(methods) == 0 {
		methods = []string{MethodBasebackup}
	}
	if haveLeader {
		return slices.Clone(methods)
	}
	var out []string
	for _, m := range methods {
		if m != MethodBasebackup && c.Methods[m].worksWithoutLeader() {
			out = append(out, m)
		}
	}
	return out
}

// MethodInvocation is how a user-defined method is run.
type MethodInvocation struct {
	Command  string   // the shell words of the command
	Args     []string // appended: --key=value
	KeepData bool
}

// methodInvocation builds the command line of a user-defined method as
// Patroni does: the section's command (default the name), then unless
// no_params --scope, --role=replica, --datadir, --connstring (when there
// is a leader) and the section's other keys, sorted.
func (c Config) methodInvocation(name, scope, connstring string) MethodInvocation {
	m := c.Methods[name]
	inv := MethodInvocation{Command: m.Command, KeepData: m.KeepData}
	if inv.Command == "" {
		inv.Command = name
	}
	if m.NoParams {
		return inv
	}
	inv.Args = []string{"--scope=" + scope, "--role=replica", "--datadir=" + c.DataDir}
	if connstring != "" {
		inv.Args = append(inv.Args, "--connstring="+connstring)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Options)) {
		inv.Args = append(inv.Args, "--"+k+"="+m.Options[k])
	}
	return inv
}

// validateMethods checks create_replica_methods against the method
// sections: no empty or repeated name, and every section named by the list
// (a section nothing names is most likely a typo of another key).
func (c Config) validateMethods() []error {
	var errs []error
	seen := map[string]bool{}
	for n, m := range c.CreateReplicaMethods {
		switch {
		case strings.TrimSpace(m) == "":
			errs = append(errs, fmt.Errorf("postgres.create_replica_methods[%d]: empty method name", n))
		case seen[m]:
			errs = append(errs, fmt.Errorf("postgres.create_replica_methods[%d]: %q is listed twice", n, m))
		}
		seen[m] = true
	}
	for _, name := range slices.Sorted(maps.Keys(c.Methods)) {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("postgres.%s: unknown key (a method section must be named in postgres.create_replica_methods)", name))
		}
	}
	if strings.ContainsAny(c.RecoveryConf.RestoreCommand, "\r\n") {
		errs = append(errs, errors.New("postgres.recovery_conf.restore_command: must be a single line"))
	}
	if strings.ContainsAny(c.RecoveryConf.ArchiveCleanupCommand, "\r\n") {
		errs = append(errs, errors.New("postgres.recovery_conf.archive_cleanup_command: must be a single line"))
	}
	return errs
}
