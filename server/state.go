package server

import (
	"sync/atomic"

	"github.com/sluicehq/sluice/clock"
	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/keyspace"
)

// state is what the server serves: the keyspace and its clock, their
// durable copy, and the command server on top. This file alone knows how
// they are wired together.
type state struct {
	keys  *keyspace.Keyspace
	clock *clock.Settable
	cmds  *commands.Server
	// dur is the data directory once recovery opened and loaded it (see
	// recovery.go); nil until then, and always without Config.DataDir.
	dur atomic.Pointer[durability]
}

// newState builds the keyspace and puts a command server on top: cc
// carries the server's other fields (settings, users, network counters),
// newState adds the state. With a data directory the keyspace emits its
// changes to it and the commands see it through storeView, both as soon as
// recovery has opened it (until then every command that could change state
// answers -LOADING).
func newState(cfg Config, cc commands.Config) *state {
	st := &state{clock: clock.NewSettable(clock.NewSystem())}
	var journal keyspace.Journal // nil in memory, not a typed nil
	if cfg.DataDir != "" {
		journal, cc.Persistence = journalRef{st}, storeView{st: st, cfg: cfg}
	}
	st.keys = keyspace.New(cfg.Shards, journal)
	cc.Keys, cc.Clock = st.keys, st.clock
	st.cmds = commands.NewServer(cc)
	return st
}

// journalRef is the keyspace's Journal with a data directory: the store,
// once recovery has opened it. No change is recorded before (commands that
// change state answer -LOADING and the sweep has not started).
type journalRef struct{ st *state }

// Record implements keyspace.Journal.
func (j journalRef) Record(c keyspace.Change) {
	if d := j.st.dur.Load(); d != nil {
		d.store.Record(c)
	}
}

// sweepStep reclaims a slice of the expired state and samples the Go
// heap for --maxmemory; the sweeper calls it every Config.SweepInterval.
func (st *state) sweepStep() {
	st.keys.SweepStep(st.clock.Now())
	st.cmds.SampleMemory()
}

// keyCount counts the keys held, for the log.
func (st *state) keyCount() int { return st.keys.Len() }

// shards is the keyspace's shard count, for the log.
func (st *state) shards() int { return st.keys.Shards() }

// close closes the durable copy (see durability.close); call it once the
// network, the sweeper and recovery have stopped.
func (st *state) close() error { return st.dur.Load().close() }
