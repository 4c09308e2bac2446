package server

import (
	"log/slog"

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
	dur   *durability // nil in memory
	cmds  *commands.Server
}

// newState opens the data directory when one is set, builds the keyspace
// emitting its changes to it, recovers what it holds (every kind of state,
// in one pass), and puts a command server on top: cc carries the server's
// other fields (settings, users, network counters), newState adds the
// state.
func newState(cfg Config, cc commands.Config, log *slog.Logger) (*state, error) {
	dur, err := openDurability(cfg, log)
	if err != nil {
		return nil, err
	}
	var journal keyspace.Journal // nil in memory, not a typed nil
	if dur != nil {
		journal, cc.Persistence = dur.store, storeView{dur.store}
	}
	st := &state{keys: keyspace.New(cfg.Shards, journal), clock: clock.NewSettable(clock.NewSystem()), dur: dur}
	now := st.clock.Now()
	if err := dur.load(st.keys, now); err != nil {
		_ = dur.close()
		return nil, err
	}
	cc.Keys, cc.Clock = st.keys, st.clock
	st.cmds = commands.NewServer(cc)
	return st, nil
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
// network and the sweeper have stopped.
func (st *state) close() error { return st.dur.close() }
