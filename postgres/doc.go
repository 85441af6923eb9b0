// Package postgres owns everything Regent does to its local PostgreSQL
// instance: observing it (Status over one persistent pgx connection,
// ControlData from pg_controldata), creating it (InitDB, SetupRoles,
// CreateReplica with the create_replica_methods in order — Clone with
// pg_basebackup or a user's command such as a pgBackRest restore — and
// BootstrapFromBackup for a custom bootstrap), repairing it (Rewind with pg_rewind, after SourceCheckpointTimeline
// shows the source's control file on its timeline; WipeDataDir),
// running it (Start, Stop with smart → fast → immediate escalation, Promote,
// Checkpoint, Reload through pg_ctl and SQL) and configuring it (Regent's
// postgresql.conf, the standby recovery block, pg_hba.conf, replication
// slots: EnsureSlots applies a slot plan; ReadSlotStates and
// InstallSlotStates copy a primary's logical slot files into a stopped
// replica).
//
// It also holds the pure helpers the agent decides with: LSN arithmetic,
// Patroni's slot naming rule (SlotName), the slot plan (PlanSlots: what
// to create, advance, drop or copy given the policy and the existing
// slots), timeline history parsing and the divergence test (NeedsRewind).
//
// postgres never talks to etcd, never imports dcs or fencing and never
// decides anything: it reports what PostgreSQL says and performs the
// operation it is asked to, bounded by the caller's ctx. Whether to promote,
// demote, rewind or re-clone is the agent's decision.
//
// Files Regent writes into the data directory:
//
//	postgresql.base.conf  initdb's postgresql.conf, kept as is
//	postgresql.conf       include of the base file, Regent's defaults,
//	                      postgres.parameters, then the recovery block
//	pg_hba.conf           postgres.pg_hba first, then Regent's own lines
//	standby.signal        present while the instance is configured as standby
//	pg_replslot/<slot>/state  a copy of the primary's logical slot, only
//	                      while PostgreSQL is stopped (InstallSlotStates)
//	recovery.signal       only during a bootstrap from a backup
//
// Every file is written atomically (temporary file + rename) with mode 0600
// and, when the agent runs as root and PostgreSQL runs as another user
// (Options.SysProcAttr.Credential), is owned by that user.
package postgres
