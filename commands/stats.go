package commands

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/resp"
	"github.com/sluicehq/sluice/topkeys"
)

// Latency is a histogram of command execution times in power-of-two
// nanosecond buckets: bucket i counts durations in [2^(i-1), 2^i) ns.
type Latency struct {
	buckets [40]atomic.Uint64
	sumNs   atomic.Uint64
}

func (l *Latency) observe(d time.Duration) {
	i := min(bits.Len64(uint64(max(d, 0))), len(l.buckets)-1)
	l.buckets[i].Add(1)
	l.sumNs.Add(uint64(max(d, 0)))
}

// Snapshot returns the upper bound in seconds of every bucket, its
// non-cumulative count, and the sum of all observations in seconds.
func (l *Latency) Snapshot() (bounds []float64, counts []uint64, sum float64) {
	for i := range l.buckets {
		bounds = append(bounds, float64(uint64(1)<<i)/1e9)
		counts = append(counts, l.buckets[i].Load())
	}
	return bounds, counts, float64(l.sumNs.Load()) / 1e9
}

// CommandStats are one command's counters.
type CommandStats struct {
	Name    string
	Calls   uint64
	Allowed uint64 // THROTTLE family: decisions that admitted
	Limited uint64 // THROTTLE family: decisions that refused
}

// Stats are the command server's counters, for INFO and metrics.
type Stats struct {
	Commands          []CommandStats
	CommandsProcessed uint64
	Rejected          uint64 // unknown commands and arity errors
	AuthFailures      uint64
	DeniedCommand     uint64
	DeniedKey         uint64
	Keys              int
	Allowed, Limited  uint64
	Expired           uint64
	Errors            uint64 // error replies from handlers (bad arguments, overflow...)
	OOMRejected       uint64 // calls refused with -OOM (over maxmemory)
}

// Stats gathers the counters; it takes each shard lock briefly.
func (s *Server) Stats() Stats {
	st := Stats{
		CommandsProcessed: s.commandsProcessed(),
		Rejected:          s.rejected.Load(),
		AuthFailures:      s.authFailures.Load(),
		DeniedCommand:     s.deniedCmd.Load(),
		DeniedKey:         s.deniedKey.Load(),
		OOMRejected:       s.oomRejected.Load(),
	}
	ts := s.keys.Stats()
	st.Keys, st.Allowed, st.Limited, st.Expired = ts.Keys, ts.Allowed, ts.Limited, ts.Reclaimed
	for _, c := range s.cmds.sorted {
		cs := CommandStats{Name: c.Name, Calls: c.calls.Load()}
		for _, sub := range c.Subs {
			cs.Calls += sub.calls.Load()
		}
		if c.Name == "throttle" || c.Name == "cl.throttle" {
			cs.Allowed, cs.Limited = c.allowed.Load(), c.limited.Load()
		}
		st.Commands = append(st.Commands, cs)
	}
	return st
}

// Latency is the histogram of sampled command execution times.
func (s *Server) Latency() *Latency { return &s.latency }

// countDecision counts one THROTTLE decision for the command named name
// (THROTTLE or CL.THROTTLE, told apart by length).
func (s *Server) countDecision(name []byte, limited bool) {
	cmd := s.throttleCmd
	if len(name) == len("cl.throttle") {
		cmd = s.clThrottleCmd
	}
	if limited {
		cmd.limited.Add(1)
	} else {
		cmd.allowed.Add(1)
	}
}

// recordDecision counts one decision of src on key for THROTTLE.TOP and
// the status page (cmd_top.go), through the connection's sampler.
func (s *Server) recordDecision(c *resp.Conn, src topkeys.Source, key []byte, limited bool, now int64) {
	if w := s.topWeight(c, now); w > 0 {
		s.top.RecordN(src, key, outcomeOf(limited), now, w)
	}
}
