package persistence

import (
	"errors"
	"time"

	"github.com/sluicehq/sluice/keyspace"
)

// Stats are the store's counters, for INFO.
type Stats struct {
	Dir         string
	Mode        Mode
	Recorded    uint64    // changes recorded (set, delete or flush)
	Written     uint64    // of those, handed to the OS (a process crash keeps them)
	Synced      uint64    // of those, known to be on stable storage
	KeysWritten uint64    // sets recorded
	KeysDeleted uint64    // deletes recorded (DEL, expiry, a refund back to full)
	Flushes     uint64    // flushes recorded (FLUSHALL)
	Batches     uint64    // journal records written
	Fsyncs      uint64    // syncs of the journal
	LastSync    time.Time // when the last sync completed; zero before any
	WriteErrors uint64    // failed writes and Pebble background errors
	Dropped     uint64    // changes refused because the store had failed or closed, or lost with it
	Err         error     // why the store stopped writing; nil while healthy
	DiskBytes   uint64    // Pebble's disk usage and the journal's
	Folds       uint64    // journal folds into Pebble since Open
	Folded      uint64    // journalled changes folded
	FoldedKeys  uint64    // keys those folds wrote or deleted
	Unfolded    uint64    // bytes journalled since the last fold began
	Recovery    Recovery  // what Open replayed and Load restored
}

// Recovery describes what Open replayed and Load restored, kind by kind.
type Recovery struct {
	GCRA, Window, Lease KindRecovery
	Counter, Log        KindRecovery
	Replayed            int           // journalled changes folded into Pebble at Open
	Duration            time.Duration // how long replaying (at Open) and loading took
}

// KindRecovery counts what Load found of one kind of state.
type KindRecovery struct {
	Restored int // states handed to the Restorer
	Expired  int // states whose Expires had passed, deleted from disk
	Invalid  int // malformed entries, deleted from disk
}

// Total sums the kinds.
func (r Recovery) Total() KindRecovery {
	var t KindRecovery
	for _, k := range []KindRecovery{r.GCRA, r.Window, r.Lease, r.Counter, r.Log} {
		t.Restored += k.Restored
		t.Expired += k.Expired
		t.Invalid += k.Invalid
	}
	return t
}

// of is kind's counts.
func (r *Recovery) of(kind keyspace.Kind) *KindRecovery {
	switch kind {
	case keyspace.GCRA:
		return &r.GCRA
	case keyspace.Window:
		return &r.Window
	case keyspace.Lease:
		return &r.Lease
	case keyspace.Counter:
		return &r.Counter
	case keyspace.Log:
		return &r.Log
	}
	panic("persistence: no recovery counts for kind " + kind.String())
}

// Stats reads the counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Dir:         s.dir,
		Mode:        s.mode,
		Recorded:    s.recorded.Load(),
		Written:     s.written.Load(),
		Synced:      s.synced.Load(),
		KeysWritten: s.keysWritten.Load(),
		KeysDeleted: s.keysDeleted.Load(),
		Flushes:     s.flushes.Load(),
		Batches:     s.batches.Load(),
		Fsyncs:      s.fsyncs.Load(),
		WriteErrors: s.writeErrors.Load(),
		Dropped:     s.dropped.Load(),
		Folds:       s.folds.Load(),
		Folded:      s.foldedChanges.Load(),
		FoldedKeys:  s.foldedKeys.Load(),
		Unfolded:    uint64(s.unfolded.Load()),
	}
	if ns := s.lastSync.Load(); ns != 0 {
		st.LastSync = time.Unix(0, ns)
	}
	if err := s.failure(); err != nil && !errors.Is(err, ErrClosed) {
		st.Err = err
		// Nothing is written after a failure: what was recorded and not
		// written is lost.
		st.Dropped += st.Recorded - min(st.Written, st.Recorded)
	}
	select {
	case <-s.done: // closed: Pebble's metrics are gone
	default:
		st.DiskBytes = s.diskUsage() + s.journalUsage()
	}
	s.recMu.Lock()
	st.Recovery = s.recovery
	s.recMu.Unlock()
	return st
}

// diskUsage is Pebble's own account of its files, tolerating a concurrent
// Close.
func (s *Store) diskUsage() (n uint64) {
	defer func() { _ = recover() }()
	return s.db.Metrics().DiskSpaceUsage()
}
