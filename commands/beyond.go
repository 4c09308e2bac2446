package commands

import (
	"sync/atomic"

	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/policy"
	"github.com/sluicehq/sluice/window"
)

// beyond is the state of the commands beyond redis-cell that the GCRA table
// does not hold: the policies, the window counters and the leases. GCRA
// state (THROTTLE.MULTI, GCRA policies) lives in the server's gcra.Table.
type beyond struct {
	policies atomic.Pointer[policy.Set]
	windows  *window.Store
	leases   *lease.Store
}

// beyondOf returns s's beyond state.
func beyondOf(s *Server) *beyond { return s.beyond }

// beyondShards is the number of shards of the window and lease state.
const beyondShards = 64

func newBeyond() *beyond {
	return &beyond{windows: window.NewStore(beyondShards), leases: lease.NewStore(beyondShards)}
}

// SetPolicies replaces the policies that POLICY.THROTTLE, POLICY.LIST and
// POLICY.GET serve; calls already running finish with the old ones. nil
// removes every policy. State is kept: a policy whose limits change keeps
// charging the same keys.
func (s *Server) SetPolicies(set *policy.Set) { beyondOf(s).policies.Store(set) }

// Policies returns the policies in use (nil when none were set).
func (s *Server) Policies() *policy.Set { return beyondOf(s).policies.Load() }

// SweepBeyond examines up to budget keys per shard of the window and lease
// state, removes those that no longer matter at the server clock's now, and
// returns how many it removed. The GCRA table is swept by its own loop.
func (s *Server) SweepBeyond(budget int) int {
	b := beyondOf(s)
	now := s.clock.Now()
	return b.windows.Sweep(now, budget) + b.leases.Sweep(now, budget)
}
