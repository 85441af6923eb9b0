package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/postgres"
)

// initdbTimeout bounds initdb, the first start and role setup.
const initdbTimeout = 5 * time.Minute

// bootstrap races for the initialize key; the winner creates the cluster:
// initdb, start, roles, then initialize = system id, config = bootstrap.dcs,
// and the leader key (patroni-compat.md §3.12). A failed bootstrap deletes
// the initialize key and stops the agent, as Patroni does.
func (a *Agent) bootstrap(ctx context.Context) error {
	rctx, cancel := a.ioContext(ctx)
	won, err := a.dcs.CreateInitialize(rctx)
	cancel()
	if err != nil {
		a.log.Warn("bootstrap race failed", "err", err)
		return nil
	}
	if !won {
		a.log.Info("another member won the bootstrap race")
		return nil
	}
	if name, m, ok := a.cfg.Bootstrap.Custom(); ok {
		a.log.Info("won the bootstrap race; creating the cluster with a custom method", "method", name)
		a.bootstrapFromBackup(ctx, name, m)
		return nil
	}
	a.log.Info("won the bootstrap race; initializing a new cluster")
	if err := a.initCluster(ctx); err != nil {
		a.abortBootstrap(ctx)
		return fmt.Errorf("bootstrap failed: %w", err)
	}
	return nil
}

func (a *Agent) initCluster(ctx context.Context) error {
	a.pgState, a.role = PGInitializing, RoleUninitialized
	ictx, cancel := context.WithTimeout(ctx, initdbTimeout)
	defer cancel()
	if err := a.pg.InitDB(ictx); err != nil {
		return err
	}
	if _, err := a.pg.WriteHBA(nil); err != nil {
		return err
	}
	if _, err := a.pg.ConfigurePrimary(); err != nil {
		return err
	}
	if err := a.pg.Start(ictx); err != nil {
		return err
	}
	a.pgState, a.role = PGRunning, RolePrimary
	return a.publishBootstrap(ictx)
}

// bootstrapFromBackup creates the cluster with a custom bootstrap method
// (bootstrap.method: a restore from a backup, to a point in time or to
// the end of the archive). The restore and the recovery take as long as
// they take, so they run beside the loop, which keeps renewing this
// member's key and waits (decide: busy) meanwhile; the loop then writes
// the cluster's initial state as after initdb (publishBootstrap).
//
// How it keeps the safety rule: it runs only after this member won the
// initialize key (CreateInitialize, created empty), so no other member
// bootstraps, clones or races meanwhile ("another member is
// bootstrapping"), and nothing routes to this PostgreSQL: /primary
// answers 200 only with the lease. The restored PostgreSQL accepts writes
// from its promotion (at the recovery target) until the leader key is
// taken, exactly as a new initdb cluster does between its first start and
// the key; if the key cannot be taken, the bootstrap is undone
// (abortBootstrap: stop, wipe, initialize deleted) and the agent stops.
func (a *Agent) bootstrapFromBackup(ctx context.Context, name string, m postgres.BootstrapMethod) {
	a.pgState, a.role = PGCustomBootstrap, RoleUninitialized
	a.startJob(ctx, "bootstrap from "+name, func(ctx context.Context) error {
		bctx, cancel := context.WithTimeout(ctx, cloneTimeout)
		defer cancel()
		return a.pg.BootstrapFromBackup(bctx, name, m)
	}, func(err error) {
		if err == nil {
			a.pgState, a.role = PGRunning, RolePrimary
			ictx, cancel := context.WithTimeout(ctx, initdbTimeout)
			err = a.publishBootstrap(ictx)
			cancel()
		}
		if err != nil {
			a.abortBootstrap(ctx)
			a.fatal = fmt.Errorf("bootstrap failed: %w", err)
		}
	})
}

// publishBootstrap writes a new cluster's initial state once its first
// primary runs: the replication role, initialize = system id, config =
// bootstrap.dcs, then the leader key and the watchdog.
func (a *Agent) publishBootstrap(ictx context.Context) error {
	if err := a.pg.SetupRoles(ictx); err != nil {
		return err
	}
	st, err := a.pg.Status(ictx)
	if err != nil {
		return err
	}
	if err := a.writeClusterKeys(ictx, st.SystemID); err != nil {
		return err
	}
	if err := a.armWatchdog(); err != nil {
		return fmt.Errorf("watchdog required but cannot be armed: %w", err)
	}
	a.log.Info("cluster initialized", "system_id", st.SystemID)
	return nil
}

// writeClusterKeys writes a new cluster's keys once its first server
// runs: initialize = system id, config = bootstrap.dcs, then the leader
// key on a live lease.
func (a *Agent) writeClusterKeys(ctx context.Context, systemID uint64) error {
	cfgJSON, err := a.cfg.BootstrapDCSJSON()
	if err != nil {
		return err
	}
	if err := a.dcs.SetInitialize(ctx, strconv.FormatUint(systemID, 10)); err != nil {
		return err
	}
	if _, err := a.dcs.CAS(ctx, a.dcs.Keys().Config(), cfgJSON, 0); err != nil {
		a.log.Warn("config key already present; keeping it", "err", err)
	}
	sent, err := a.liveLease(ctx)
	if err != nil {
		return err
	}
	won, err := a.dcs.AcquireLeader(ctx, a.name)
	if err != nil {
		return err
	}
	if !won {
		return errors.New("the leader key was taken during bootstrap")
	}
	a.setLease(a.lease.won(sent))
	return nil
}

// liveLease makes sure the session lease is alive before the bootstrap
// takes the leader key, and returns the send time its expiry counts from.
// initdb can outlast the lease (a slow disk, a loaded host): nothing but
// the member key is on it, so a fresh lease replaces an expired one rather
// than failing the bootstrap.
func (a *Agent) liveLease(ctx context.Context) (time.Time, error) {
	sent := a.now()
	if a.dcs.Lease() != 0 {
		err := a.dcs.KeepAlive(ctx)
		if err == nil {
			return sent, nil
		}
		if !errors.Is(err, dcs.ErrLeaseLost) {
			return time.Time{}, err
		}
		a.log.Info("the session lease expired during initdb; granting a fresh one")
	}
	sent = a.now()
	if _, err := a.dcs.GrantLease(ctx, a.dyn.TTL); err != nil {
		return time.Time{}, err
	}
	a.setLease(a.lease.granted(a.dyn.TTL))
	a.memberWritten = memberRecord{}
	return sent, nil
}

// abortBootstrap undoes a failed bootstrap so another attempt can start
// clean: PostgreSQL stopped, data directory wiped, initialize deleted.
func (a *Agent) abortBootstrap(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if err := a.stopForSafety(ctx); err != nil {
		a.log.Warn("abort bootstrap: stop", "err", err)
	}
	if err := a.wipeDataDir(ctx); err != nil {
		a.log.Warn("abort bootstrap: wipe data directory", "err", err)
	}
	dctx, cancel := context.WithTimeout(ctx, a.dyn.RetryTimeout)
	defer cancel()
	if err := a.dcs.DeleteInitialize(dctx); err != nil {
		a.log.Warn("abort bootstrap: delete initialize key", "err", err)
	}
	if a.lease.leading {
		a.release(dctx)
	}
}
