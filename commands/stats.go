package commands

import (
	"math/bits"
	"slices"
	"strings"
	"sync"
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
	Name  string
	Calls uint64
}

// DecisionStats count the decisions of one kind: one command with one
// algorithm, or, for POLICY.THROTTLE, one policy. INFO (decisionstats) and
// the metrics read the same counters.
type DecisionStats struct {
	Command   string // throttle, cl.throttle, throttle.multi, throttle.window, policy.throttle
	Algorithm string // gcra, fixed or sliding
	Policy    string // the policy's name, in Stats.Policies only
	Allowed   uint64 // decisions that admitted
	Limited   uint64 // decisions that refused
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
	// Decisions are the rate-limit decisions by command and algorithm,
	// every kind listed even at zero; Policies by policy (each policy
	// that has decided since start). Allowed and Limited sum Decisions.
	Decisions        []DecisionStats
	Policies         []DecisionStats
	Allowed, Limited uint64
	Expired          uint64
	Errors           uint64 // error replies from handlers (bad arguments, overflow...)
	OOMRejected      uint64 // calls refused with -OOM (over maxmemory)
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
	st.Keys, st.Expired = ts.Keys, ts.Reclaimed
	for _, c := range s.cmds.sorted {
		cs := CommandStats{Name: c.Name, Calls: c.calls.Load()}
		for _, sub := range c.Subs {
			cs.Calls += sub.calls.Load()
		}
		st.Commands = append(st.Commands, cs)
	}
	st.Decisions, st.Policies = s.decisions.stats()
	for _, d := range st.Decisions {
		st.Allowed += d.Allowed
		st.Limited += d.Limited
	}
	return st
}

// Latency is the histogram of command execution times, one call in
// latencySampleEvery per connection (every call is timed; see run).
func (s *Server) Latency() *Latency { return &s.latency }

// decisionKind indexes the decision counters by command and algorithm.
type decisionKind int

// The kinds of decisions, in the order INFO and the metrics list them.
const (
	decidedThrottle decisionKind = iota
	decidedCLThrottle
	decidedMulti
	decidedWindowFixed
	decidedWindowSliding
	decidedPolicyGCRA
	decidedPolicyFixed
	decidedPolicySliding
	decisionKinds
)

// decisionNames names each kind: its command and its algorithm.
var decisionNames = [decisionKinds][2]string{
	{"throttle", "gcra"}, {"cl.throttle", "gcra"}, {"throttle.multi", "gcra"},
	{"throttle.window", "fixed"}, {"throttle.window", "sliding"},
	{"policy.throttle", "gcra"}, {"policy.throttle", "fixed"}, {"policy.throttle", "sliding"},
}

// counts are one kind's counters.
type counts struct {
	allowed, limited atomic.Uint64
}

func (c *counts) add(limited bool) {
	if limited {
		c.limited.Add(1)
	} else {
		c.allowed.Add(1)
	}
}

// decisions counts every rate-limit decision once, by kind and, for
// policies, by policy: the one source of INFO's and the metrics' figures.
type decisions struct {
	byKind [decisionKinds]counts

	mu       sync.RWMutex
	byPolicy map[string]*policyCounts // made on a policy's first decision
}

// policyCounts are one policy's counters and its algorithm.
type policyCounts struct {
	algorithm string
	counts
}

// count counts one decision of kind.
func (d *decisions) count(kind decisionKind, limited bool) { d.byKind[kind].add(limited) }

// countPolicy counts one decision of the policy named name, whose
// algorithm is algo (gcra, fixed or sliding), under its kind as well.
func (d *decisions) countPolicy(name, algo string, kind decisionKind, limited bool) {
	d.count(kind, limited)
	d.mu.RLock()
	pc := d.byPolicy[name]
	d.mu.RUnlock()
	if pc == nil || pc.algorithm != algo {
		d.mu.Lock()
		if pc = d.byPolicy[name]; pc == nil || pc.algorithm != algo {
			// New, or reloaded with another algorithm: counting starts
			// afresh under the new one.
			if d.byPolicy == nil {
				d.byPolicy = map[string]*policyCounts{}
			}
			pc = &policyCounts{algorithm: algo}
			d.byPolicy[name] = pc
		}
		d.mu.Unlock()
	}
	pc.add(limited)
}

// stats reads the counters: every kind, then the policies by name.
func (d *decisions) stats() (kinds, policies []DecisionStats) {
	for k := range decisionKinds {
		c := &d.byKind[k]
		kinds = append(kinds, DecisionStats{Command: decisionNames[k][0], Algorithm: decisionNames[k][1],
			Allowed: c.allowed.Load(), Limited: c.limited.Load()})
	}
	d.mu.RLock()
	for name, pc := range d.byPolicy {
		policies = append(policies, DecisionStats{Command: "policy.throttle", Algorithm: pc.algorithm, Policy: name,
			Allowed: pc.allowed.Load(), Limited: pc.limited.Load()})
	}
	d.mu.RUnlock()
	slices.SortFunc(policies, func(a, b DecisionStats) int { return strings.Compare(a.Policy, b.Policy) })
	return kinds, policies
}

// countThrottle counts one THROTTLE or CL.THROTTLE decision, the command
// told by its name's length.
func (s *Server) countThrottle(name []byte, limited bool) {
	kind := decidedThrottle
	if len(name) == len("cl.throttle") {
		kind = decidedCLThrottle
	}
	s.decisions.count(kind, limited)
}

// recordDecision counts one decision of src on key for THROTTLE.TOP and
// the status page (cmd_top.go), through the connection's sampler.
func (s *Server) recordDecision(c *resp.Conn, src topkeys.Source, key []byte, limited bool, now int64) {
	if w := s.topWeight(c, now); w > 0 {
		s.top.RecordN(src, key, outcomeOf(limited), now, w)
	}
}
