package keyspace

import (
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/counter"
	"github.com/sluicehq/sluice/keyspace/internal/table"
	"github.com/sluicehq/sluice/lease"
)

// Keyspace is every key and its state, sharded: a power-of-two number of
// shards, each behind its own mutex, a key's state of every kind in the
// shard its name hashes to. It is safe for concurrent use. Build one with
// [New].
//
// Lock order: an operation on one key holds its shard's lock; an operation
// on several (THROTTLE.MULTI, policies) takes their shards' locks in
// ascending shard order; Flush takes every lock in that order. Journal.Record
// runs under those locks.
type Keyspace struct {
	shards  []shard
	mask    uint64
	seed    maphash.Seed
	journal Journal
	// offHeap is the bytes every shard's TAT table holds outside the Go
	// heap, kept by the tables as they map and unmap (see OffHeapBytes).
	offHeap atomic.Int64
	// fixedLeaseIDs, set by FixLeaseIDs, replaces the shards' generators.
	fixedLeaseIDs atomic.Pointer[fixedLeaseIDs]
}

// shard is one lock's worth of the keyspace. GCRA TATs live in an
// off-heap table (most keys hold only one); windows, leases, counters and
// sliding logs, rarer and larger, in Go maps made on first use.
type shard struct {
	mu       sync.Mutex
	tats     table.Table
	windows  map[string]windowEntry
	leases   map[string][]lease.Lease
	counters map[string]counter.State
	logs     map[string]logEntry
	// extra counts the kinds held by key names beyond the first kind of
	// each name, so Len counts names: the entries of every kind - extra.
	extra     int
	buf       []byte // scratch for encoding journalled values, under mu
	allowed   uint64 // GCRA decisions that admitted
	limited   uint64 // GCRA decisions that refused
	reclaimed uint64 // keys' state removed by the sweep because it expired
	// leaseIDs draws the shard's lease IDs (see newLeaseID): ChaCha8, a
	// cryptographic generator, seeded from crypto/rand when first needed.
	leaseIDs *rand.ChaCha8
	_        [64]byte
}

// New returns a keyspace with the given number of shards, rounded up to a
// power of two (at least 1), that emits its changes to journal (nil: to
// nobody).
func New(shards int, journal Journal) *Keyspace {
	if shards < 1 {
		shards = 1
	}
	n := 1 << bits.Len(uint(shards-1))
	ks := &Keyspace{shards: make([]shard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(), journal: journal}
	for i := range ks.shards {
		ks.shards[i].tats.CountMappedIn(&ks.offHeap)
	}
	return ks
}

// OffHeapBytes is the memory the keyspace holds outside the Go heap, which
// the Go runtime's figures do not include: the slot arrays and key arenas
// of large shards' TAT tables. It is exact (the tables count every map and
// unmap) and costs one atomic load, so a check on every command can afford
// it. Everything else the keyspace holds is on the Go heap.
func (ks *Keyspace) OffHeapBytes() int64 { return ks.offHeap.Load() }

// Shards is the number of shards.
func (ks *Keyspace) Shards() int { return len(ks.shards) }

func (ks *Keyspace) hash(key []byte) uint64 { return maphash.Bytes(ks.seed, key) }

func (ks *Keyspace) locate(key []byte) (*shard, uint64) {
	h := ks.hash(key)
	return &ks.shards[h&ks.mask], h
}

// record hands c to the journal, if there is one.
func (ks *Keyspace) record(c Change) {
	if ks.journal != nil {
		ks.journal.Record(c)
	}
}

// others reports whether key holds state of a kind other than k. Called
// with s.mu held.
func (s *shard) others(k Kind, key []byte, h uint64) bool {
	if k != GCRA {
		if _, ok := s.tats.Find(key, h); ok {
			return true
		}
	}
	if k != Window && len(s.windows) > 0 {
		if _, ok := s.windows[string(key)]; ok {
			return true
		}
	}
	if k != Lease && len(s.leases) > 0 {
		if _, ok := s.leases[string(key)]; ok {
			return true
		}
	}
	if k != Counter && len(s.counters) > 0 {
		if _, ok := s.counters[string(key)]; ok {
			return true
		}
	}
	if k != Log && len(s.logs) > 0 {
		if _, ok := s.logs[string(key)]; ok {
			return true
		}
	}
	return false
}

// added accounts for key's new state of kind k (stored just now).
func (s *shard) added(k Kind, key []byte, h uint64) {
	if s.others(k, key, h) {
		s.extra++
	}
}

// removed accounts for key's state of kind k, removed just now.
func (s *shard) removed(k Kind, key []byte, h uint64) {
	if s.others(k, key, h) {
		s.extra--
	}
}

func (s *shard) len() int {
	return s.tats.Len() + len(s.windows) + len(s.leases) + len(s.counters) + len(s.logs) - s.extra
}

// Delete removes every kind of state key holds and reports whether any of
// it still mattered at now (DEL counts the key once).
func (ks *Keyspace) Delete(key []byte, now int64) bool {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	live := false
	if i, ok := s.tats.Find(key, h); ok {
		live = s.tats.Value(i) > now
		ks.removeTAT(s, i, key, h)
	}
	if e, ok := s.windows[string(key)]; ok {
		live = live || e.expires > now
		ks.removeWindow(s, key, h)
	}
	if ls, ok := s.leases[string(key)]; ok {
		live = live || lease.Last(ls) > now
		ks.removeLeases(s, key, h)
	}
	if st, ok := s.counters[string(key)]; ok {
		live = live || st.Expires > now
		ks.removeCounter(s, key, h)
	}
	if e, ok := s.logs[string(key)]; ok {
		live = live || e.expires > now
		ks.removeLog(s, key, h)
	}
	return live
}

// Expires returns when the last of key's state stops mattering, if any of
// it still matters at now (EXISTS, TTL, PTTL).
func (ks *Keyspace) Expires(key []byte, now int64) (int64, bool) {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	last := int64(0)
	if tat, ok := s.tats.Get(key, h); ok {
		last = tat
	}
	if e, ok := s.windows[string(key)]; ok {
		last = max(last, e.expires)
	}
	if ls, ok := s.leases[string(key)]; ok {
		last = max(last, lease.Last(ls))
	}
	if st, ok := s.counters[string(key)]; ok {
		last = max(last, st.Expires)
	}
	if e, ok := s.logs[string(key)]; ok {
		last = max(last, e.expires)
	}
	return last, last > now
}

// Len is the number of key names holding state, each counted once
// whatever kinds it holds, including state expired but not yet swept (as
// Redis's DBSIZE counts keys not yet evicted).
func (ks *Keyspace) Len() int {
	n := 0
	for i := range ks.shards {
		s := &ks.shards[i]
		s.mu.Lock()
		n += s.len()
		s.mu.Unlock()
	}
	return n
}

// Flush removes every key and returns how many key names held state. It
// holds every shard lock at once, so the flush is one step for concurrent
// commands and one Change for the journal.
func (ks *Keyspace) Flush() int {
	ks.lockAll()
	defer ks.unlockAll()
	n := ks.flushLocked()
	ks.record(Change{Op: Flush})
	return n
}

func (ks *Keyspace) flushLocked() int {
	n := 0
	for i := range ks.shards {
		s := &ks.shards[i]
		n += s.len()
		s.tats.Reset()
		s.windows, s.leases, s.counters, s.logs, s.extra = nil, nil, nil, nil, 0
	}
	return n
}

// lockShards locks the shards whose indexes idx holds, each once, in
// ascending order (the lock order), and returns them for unlockShards.
func (ks *Keyspace) lockShards(idx []uint64) []uint64 {
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		ks.shards[i].mu.Lock()
	}
	return idx
}

func (ks *Keyspace) unlockShards(idx []uint64) {
	for _, i := range idx {
		ks.shards[i].mu.Unlock()
	}
}

func (ks *Keyspace) lockAll() {
	for i := range ks.shards {
		ks.shards[i].mu.Lock()
	}
}

func (ks *Keyspace) unlockAll() {
	for i := range ks.shards {
		ks.shards[i].mu.Unlock()
	}
}

// Hold runs fn while every shard is locked: every change made before was
// handed whole to the journal, and none is made until fn returns (a
// server stopping cleanly notes what its journals hold). fn must not use
// the keyspace.
func (ks *Keyspace) Hold(fn func()) {
	ks.lockAll()
	defer ks.unlockAll()
	fn()
}

// Stats are counters summed over all shards.
type Stats struct {
	Keys       int // key names holding state (see Len)
	GCRA       int // keys holding a TAT
	Windows    int // keys holding window counters
	Leases     int // keys holding leases
	Counters   int // keys holding a counter
	Logs       int // keys holding a sliding log
	Slots      int // hash slots allocated for TATs
	ArenaBytes int // bytes of key arena allocated for TATs
	// OffHeapBytes is the part of the TAT tables' slots and arenas held
	// outside the Go heap (see Keyspace.OffHeapBytes).
	OffHeapBytes int64
	Allowed      uint64 // GCRA decisions that admitted
	Limited      uint64 // GCRA decisions that refused
	Reclaimed    uint64 // keys' state removed by the sweep
}

// Stats sums the shards' counters, one shard lock at a time.
func (ks *Keyspace) Stats() Stats {
	var st Stats
	for i := range ks.shards {
		s := &ks.shards[i]
		s.mu.Lock()
		st.Keys += s.len()
		st.GCRA += s.tats.Len()
		st.Windows += len(s.windows)
		st.Leases += len(s.leases)
		st.Counters += len(s.counters)
		st.Logs += len(s.logs)
		st.Slots += s.tats.Slots()
		st.ArenaBytes += s.tats.ArenaBytes()
		st.Allowed += s.allowed
		st.Limited += s.limited
		st.Reclaimed += s.reclaimed
		s.mu.Unlock()
	}
	st.OffHeapBytes = ks.OffHeapBytes()
	return st
}

// Sweep examines up to budget entries of each kind in every shard,
// continuing where the previous call stopped (for TATs) or at random (for
// the other kinds), and removes state that no longer matters at now,
// holding one shard lock at a time. It returns how many pieces of state it
// removed. However large the budget, one call examines each shard's TATs
// at most once over, so a full pass always ends.
func (ks *Keyspace) Sweep(now int64, budget int) int {
	n := 0
	for i := range ks.shards {
		n += ks.sweepShard(&ks.shards[i], now, budget, budget)
	}
	return n
}

// SweepStep is one background pass of reclaiming expired state: it
// examines a tenth of each shard's TAT slots and of its other state
// (at least 64 of each), so everything is visited within about ten passes,
// holding one shard lock for one bounded step at a time.
func (ks *Keyspace) SweepStep(now int64) {
	for i := range ks.shards {
		s := &ks.shards[i]
		s.mu.Lock()
		tatBudget := s.tats.Slots()/10 + 64
		otherBudget := (len(s.windows)+len(s.leases)+len(s.counters)+len(s.logs))/10 + 64
		s.mu.Unlock()
		ks.sweepShard(s, now, tatBudget, otherBudget)
	}
}

func (ks *Keyspace) sweepShard(s *shard, now int64, tatBudget, otherBudget int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.tats.Sweep(now, tatBudget, func(key []byte) {
		ks.record(Change{Op: Delete, Kind: GCRA, Key: key})
		if s.others(GCRA, key, 0) { // the key's TAT is no part of others(GCRA)
			s.extra--
		}
	})
	n += ks.sweepWindows(s, now, otherBudget)
	n += ks.sweepLeases(s, now, otherBudget)
	n += ks.sweepCounters(s, now, otherBudget)
	n += ks.sweepLogs(s, now, otherBudget)
	s.reclaimed += uint64(n)
	return n
}
