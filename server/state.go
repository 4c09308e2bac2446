package server

import (
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/commands"
	"github.com/sluicehq/sluice/gcra"
)

// windowLeaseSweepBudget is how many window and lease keys per shard one
// sweep pass examines (writes also reclaim as they go, so the sweep only
// bounds what idle keys keep).
const windowLeaseSweepBudget = 256

// state is what the server serves: the state table and its clock, their
// durable copy, and the command server on top. This file alone knows how
// they are wired together.
type state struct {
	table *gcra.Table
	clock *clock.Settable
	dur   *durability // nil in memory
	cmds  *commands.Server
}

// newState opens the data directory when one is set, builds the table
// journalling to it, recovers what it holds, and puts a command server on
// top: cc carries the server's other fields (settings, users, network
// counters), newState adds the state.
func newState(cfg Config, cc commands.Config, log *slog.Logger) (*state, error) {
	dur, err := openDurability(cfg, log)
	if err != nil {
		return nil, err
	}
	var journal gcra.Journal // nil in memory, not a typed nil
	if dur != nil {
		journal, cc.Persistence = dur.store, storeView{dur.store}
	}
	st := &state{table: gcra.NewTable(cfg.Shards, journal), clock: clock.NewSettable(clock.NewSystem()), dur: dur}
	if err := dur.load(st.table, st.clock.Now()); err != nil {
		_ = dur.close()
		return nil, err
	}
	cc.Table, cc.Clock = st.table, st.clock
	st.cmds = commands.NewServer(cc)
	windows, leases, err := st.cmds.RecoverBeyond(st.clock.Now())
	if err != nil {
		_ = dur.close()
		return nil, fmt.Errorf("recover window and lease state: %w", err)
	}
	if dur != nil {
		log.Info("recovered window and lease state", slog.Int("windows", windows), slog.Int("lease_keys", leases))
	}
	return st, nil
}

// sweepStep reclaims a slice of the expired state; the sweeper calls it
// every Config.SweepInterval.
func (st *state) sweepStep() {
	st.table.SweepStep(st.clock.Now())
	st.cmds.SweepBeyond(windowLeaseSweepBudget)
}

// keys counts the keys held, for the log.
func (st *state) keys() int { return st.table.Len() }

// shards is the table's shard count, for the log.
func (st *state) shards() int { return st.table.Shards() }

// close closes the durable copy (see durability.close); call it once the
// network and the sweeper have stopped.
func (st *state) close() error { return st.dur.close() }
