package commands

import (
	"errors"

	"github.com/sluicehq/sluice/gcra"
)

// Persistence is the durable copy of the table as the handlers see it;
// cmd/sluice adapts package persistence's Store to it. The table journals
// every change to it by itself (it is the table's gcra.Journal); handlers
// only wait, before replying, when the durability mode promises replies
// that a crash cannot contradict.
type Persistence interface {
	gcra.Journal
	// Wait returns once every change recorded before the call is as durable
	// as the mode promises replies can rely on (fsync-always: synced; other
	// modes return at once), or the error that makes that impossible.
	Wait() error
	// RepliesWait reports whether Wait can block (fsync always): in the
	// other modes replies never wait, so no barrier is set for them.
	RepliesWait() bool
	// Info lists the fields of INFO's persistence section.
	Info() []Setting
	// Recorded counts the changes recorded so far: a command that moved it
	// made a change its reply must not outrun (see Server.run).
	Recorded() uint64
	// RecordPut, RecordDrop and RecordFlushPrefix journal state other than
	// TATs (window counters, leases) under a namespace such as "w/";
	// LoadValues reads a namespace back, deleting what fn does not keep.
	RecordPut(ns string, key, value []byte)
	RecordDrop(ns string, key []byte)
	RecordFlushPrefix(ns string)
	LoadValues(ns string, fn func(key, value []byte) bool) (int, error)
}

// Namespaces of the state other than TATs in the durable copy.
const (
	windowNS = "w/"
	leaseNS  = "l/"
)

// nsJournal journals one store's changes (window.Journal, lease.Journal)
// under a namespace of Persistence.
type nsJournal struct {
	p  Persistence
	ns string
}

func (j nsJournal) Put(key, value []byte) { j.p.RecordPut(j.ns, key, value) }
func (j nsJournal) Delete(key []byte)     { j.p.RecordDrop(j.ns, key) }
func (j nsJournal) Flush()                { j.p.RecordFlushPrefix(j.ns) }

// RecoverWindowsAndLeases loads the window and lease state persisted under
// Persistence, dropping what no longer matters at now, and seeds lease ids
// above every id issued before (ids count up from now in microseconds).
// Call it before serving; without persistence it does nothing.
func (s *Server) RecoverWindowsAndLeases(now int64) (windows, leases int, err error) {
	p := s.cfg.Persistence
	if p == nil {
		return 0, 0, nil
	}
	if windows, err = p.LoadValues(windowNS, func(k, v []byte) bool { return s.windows.Restore(k, v, now) }); err != nil {
		return 0, 0, err
	}
	if leases, err = p.LoadValues(leaseNS, func(k, v []byte) bool { return s.leases.Restore(k, v, now) }); err != nil {
		return windows, 0, err
	}
	s.leases.SeedIDs(now / 1e3)
	return windows, leases, nil
}

// waitDurableFn is the barrier durable sets, bound once at NewServer.
func (s *Server) waitDurableFn() error {
	if err := s.durable.Wait(); err != nil {
		return errors.New(errNotDurable(err))
	}
	return nil
}

// persistenceInfo fills INFO's persistence section.
func (s *Server) persistenceInfo(kv func(string, any)) {
	kv("loading", 0)
	if s.cfg.Persistence == nil {
		kv("persistence_enabled", 0)
		return
	}
	kv("persistence_enabled", 1)
	for _, f := range s.cfg.Persistence.Info() {
		kv(f.Name, f.Value)
	}
}
