package server

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/persistence"
)

// closeTimeout bounds how long shutdown waits for the store to commit, sync
// and close; past it shutdown goes on without it (Pebble's log makes that as
// safe as a crash).
const closeTimeout = 30 * time.Second

// durability is the server's persistence: nil when Config.DataDir is empty.
// Its methods accept a nil receiver.
type durability struct {
	store *persistence.Store
	log   *slog.Logger
	once  sync.Once
	err   error // close's outcome
}

// openDurability opens the data directory cfg names, replaying the journal
// a previous run left; progress, when set, is told how the replay goes.
func openDurability(cfg Config, log *slog.Logger, progress func(persistence.Progress)) (*durability, error) {
	mode, err := persistence.ParseMode(cfg.Fsync)
	if err != nil {
		return nil, err
	}
	store, err := persistence.Open(persistence.Options{Dir: cfg.DataDir, Mode: mode, FoldBytes: cfg.FoldBytes, Logger: log, Progress: progress, OtherFiles: []string{cluster.FileName, cluster.TempFileName},
		RefuseTruncated: !cfg.JournalLoadTruncated, AcceptCorruption: cfg.JournalAcceptCorruption})
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return &durability{store: store, log: log}, nil
}

// mode names the fsync mode for the ready line, "off" without persistence.
func (d *durability) mode() string {
	if d == nil {
		return "off"
	}
	return d.store.Mode().String()
}

// load fills dst with the unexpired state on disk; call before commands
// may change dst (they answer -LOADING meanwhile).
func (d *durability) load(dst persistence.Restorer, now int64) error {
	if d == nil {
		return nil
	}
	rec, err := d.store.Load(dst, now)
	if err != nil {
		return fmt.Errorf("--data-dir: recovery: %w", err)
	}
	total := rec.Total()
	d.log.Info("recovered throttle state",
		slog.String("dir", d.store.Dir()),
		slog.Int("keys", total.Restored),
		slog.Int("gcra", rec.GCRA.Restored),
		slog.Int("windows", rec.Window.Restored),
		slog.Int("lease_keys", rec.Lease.Restored),
		slog.Int("counters", rec.Counter.Restored),
		slog.Int("sliding_logs", rec.Log.Restored),
		slog.Int("journal_replayed", rec.Replayed),
		slog.Int("expired_dropped", total.Expired),
		slog.Int("invalid_dropped", total.Invalid),
		slog.Duration("took", rec.Duration))
	return nil
}

// close commits and syncs what was recorded and closes the store, once;
// call it after the network layer and the sweeper have stopped. It returns
// why persistence failed, if it did during the run or while closing, so that
// cmd/sluice exits non-zero: a supervisor then sees that the last changes may
// not be on disk.
func (d *durability) close() error {
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		done := make(chan error, 1)
		go func() { done <- d.store.Close() }()
		select {
		case err := <-done:
			st := d.store.Stats()
			if err != nil {
				d.log.Error("persistence: close failed", slog.Any("err", err))
				d.err = fmt.Errorf("persistence: %w", err)
				return
			}
			d.log.Info("persistence closed", slog.String("dir", d.store.Dir()), slog.Uint64("changes_synced", st.Synced))
		case <-time.After(closeTimeout):
			d.log.Error("persistence: close did not finish; exiting anyway (the data dir recovers as after a crash)",
				slog.Duration("waited", closeTimeout))
			d.err = fmt.Errorf("persistence: close did not finish within %v", closeTimeout)
		}
	})
	return d.err
}

// storeView adapts the store to commands.Persistence from New on: until
// recovery has opened the store, Wait and Recorded have nothing to wait
// for and Info shows the configuration.
type storeView struct {
	st  *state
	cfg Config
}

// Wait implements commands.Persistence.
func (v storeView) Wait() error {
	if d := v.st.dur.Load(); d != nil {
		return d.store.Wait()
	}
	return nil
}

// RepliesWait implements commands.Persistence: replies wait with fsync
// always.
func (v storeView) RepliesWait() bool { return v.cfg.Fsync == persistence.Always.String() }

// Recorded implements commands.Persistence.
func (v storeView) Recorded() uint64 {
	if d := v.st.dur.Load(); d != nil {
		return d.store.Recorded()
	}
	return 0
}

// Info lists INFO's persistence fields.
func (v storeView) Info() []commands.Setting {
	d := v.st.dur.Load()
	if d == nil {
		return []commands.Setting{
			{Name: "persistence_dir", Value: v.cfg.DataDir},
			{Name: "persistence_fsync", Value: v.cfg.Fsync},
			{Name: "persistence_status", Value: "loading"},
		}
	}
	st := d.store.Stats()
	total := st.Recovery.Total()
	status, lastErr := "ok", ""
	if st.Err != nil {
		status, lastErr = "failed", st.Err.Error()
	}
	age := int64(-1)
	if !st.LastSync.IsZero() {
		age = time.Since(st.LastSync).Milliseconds()
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	return []commands.Setting{
		{Name: "persistence_dir", Value: st.Dir},
		{Name: "persistence_fsync", Value: st.Mode.String()},
		{Name: "persistence_status", Value: status},
		{Name: "persistence_last_error", Value: lastErr},
		{Name: "persistence_changes_recorded", Value: u(st.Recorded)},
		{Name: "persistence_changes_written", Value: u(st.Written)},
		{Name: "persistence_changes_synced", Value: u(st.Synced)},
		{Name: "persistence_lag_changes", Value: u(st.Recorded - min(st.Synced, st.Recorded))},
		{Name: "persistence_keys_written", Value: u(st.KeysWritten)},
		{Name: "persistence_keys_deleted", Value: u(st.KeysDeleted)},
		{Name: "persistence_flushes", Value: u(st.Flushes)},
		{Name: "persistence_batches", Value: u(st.Batches)},
		{Name: "persistence_folds", Value: u(st.Folds)},
		{Name: "persistence_folded_changes", Value: u(st.Folded)},
		{Name: "persistence_folded_keys", Value: u(st.FoldedKeys)},
		{Name: "persistence_unfolded_bytes", Value: u(st.Unfolded)},
		{Name: "persistence_fsyncs", Value: u(st.Fsyncs)},
		{Name: "persistence_last_sync_age_ms", Value: strconv.FormatInt(age, 10)},
		{Name: "persistence_write_errors", Value: u(st.WriteErrors)},
		{Name: "persistence_dropped_changes", Value: u(st.Dropped)},
		{Name: "persistence_disk_bytes", Value: u(st.DiskBytes)},
		{Name: "persistence_recovery_keys", Value: strconv.Itoa(total.Restored)},
		{Name: "persistence_recovery_replayed", Value: strconv.Itoa(st.Recovery.Replayed)},
		{Name: "persistence_recovery_expired", Value: strconv.Itoa(total.Expired)},
		{Name: "persistence_recovery_invalid", Value: strconv.Itoa(total.Invalid)},
		{Name: "persistence_recovery_ms", Value: strconv.FormatInt(st.Recovery.Duration.Milliseconds(), 10)},
	}
}
