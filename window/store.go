package window

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"

	"github.com/sluicehq/sluice/gcra"
)

// Store holds every key's window counters, sharded, each shard a map behind
// its own mutex. It is safe for concurrent use. The zero Store is not
// usable; build one with [NewStore].
type Store struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
}

type shard struct {
	mu      sync.Mutex
	m       map[string]entry
	journal Journal  // nil: in memory only
	_       [64]byte // keep neighbouring shards' locks off one cache line
}

// Journal receives every change to the stored windows while the key's
// shard lock is held: Put with the key's encoded state (see Restore),
// Delete when a key is removed, Flush for Flush (with every lock held).
// key and value are valid only during the call. Persistence implements it.
type Journal interface {
	Put(key, value []byte)
	Delete(key []byte)
	Flush()
}

// SetJournal makes the store journal its changes to j. Call it before the
// store is used.
func (s *Store) SetJournal(j Journal) {
	for i := range s.shards {
		s.shards[i].journal = j
	}
}

// entryBytes is the size of an encoded entry: five big-endian int64s.
const entryBytes = 40

func (e entry) encode(b *[entryBytes]byte) []byte {
	for i, v := range [5]int64{e.st.Start, e.st.Curr, e.st.Prev, e.period, e.expires} {
		binary.BigEndian.PutUint64(b[8*i:], uint64(v))
	}
	return b[:]
}

// Restore puts back a key's state as a Journal's Put encoded it (recovery).
// It reports false, storing nothing, when the value is malformed or the
// state no longer matters at now.
func (s *Store) Restore(key, value []byte, now int64) bool {
	if len(value) != entryBytes {
		return false
	}
	var v [5]int64
	for i := range v {
		v[i] = int64(binary.BigEndian.Uint64(value[8*i:]))
	}
	e := entry{st: State{Start: v[0], Curr: v[1], Prev: v[2]}, period: v[3], expires: v[4]}
	if e.expires <= now || e.period <= 0 {
		return false
	}
	sh := &s.shards[s.shardIndex(key)]
	sh.mu.Lock()
	sh.m[string(key)] = e
	sh.mu.Unlock()
	return true
}

func (sh *shard) put(key []byte, e entry) {
	sh.m[string(key)] = e
	if sh.journal != nil {
		var b [entryBytes]byte
		sh.journal.Put(key, e.encode(&b))
	}
}

func (sh *shard) drop(key string) {
	if _, ok := sh.m[key]; !ok {
		return
	}
	delete(sh.m, key)
	if sh.journal != nil {
		sh.journal.Delete([]byte(key))
	}
}

// entry is one key's state; period tells which limit it counts for (a
// request with another period starts afresh) and expires when it stops
// mattering.
type entry struct {
	st      State
	period  int64
	expires int64
}

// sampleOnWrite is how many other keys of a shard a write examines for
// expiry, so memory stays proportional to the live keys even without
// Sweep (Redis's lazy expiry, made active on writes).
const sampleOnWrite = 2

// NewStore returns a store with shards shards, rounded up to a power of two.
func NewStore(shards int) *Store {
	if shards < 1 {
		shards = 1
	}
	n := 1 << bits.Len(uint(shards-1))
	s := &Store{shards: make([]shard, n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = map[string]entry{}
	}
	return s
}

func (s *Store) shardIndex(key []byte) uint64 { return maphash.Bytes(s.seed, key) & s.mask }

// Take applies one request of quantity to key at instant now with
// algorithm a and limit l, and stores the outcome.
func (s *Store) Take(a Algorithm, key []byte, now int64, l Limit, quantity int64) gcra.Result {
	sh := &s.shards[s.shardIndex(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.load(key, l)
	newSt, r := Decide(a, st, now, l, quantity)
	if !r.Limited {
		sh.save(key, newSt, a, l, now)
	}
	return r
}

// Check is one limit of a multi-limit request.
type Check struct {
	Key   []byte
	Limit Limit
}

// TakeMulti applies one request of quantity to every check atomically, as
// gcra.Table.ThrottleMulti does: admitted only when every check admits, and
// then all are charged; refused, nothing is, and the checks that would have
// admitted report their state as it stands. results must have len(checks)
// elements. The distinct shards are locked in ascending order.
func (s *Store) TakeMulti(a Algorithm, checks []Check, now int64, quantity int64, results []gcra.Result) (limited bool) {
	idx := make([]uint64, len(checks))
	order := make([]uint64, 0, len(checks))
	for i, c := range checks {
		idx[i] = s.shardIndex(c.Key)
		if !slices.Contains(order, idx[i]) {
			order = append(order, idx[i])
		}
	}
	slices.Sort(order)
	for _, i := range order {
		s.shards[i].mu.Lock()
	}
	defer func() {
		for _, i := range order {
			s.shards[i].mu.Unlock()
		}
	}()
	states := make([]State, len(checks))
	for i, c := range checks {
		st := s.shards[idx[i]].load(c.Key, c.Limit)
		for j := i - 1; j >= 0; j-- { // a key named twice sees the earlier charge
			if string(checks[j].Key) == string(c.Key) && checks[j].Limit.period == c.Limit.period {
				st = states[j]
				break
			}
		}
		states[i], results[i] = Decide(a, st, now, c.Limit, quantity)
		limited = limited || results[i].Limited
	}
	if limited {
		for i, c := range checks {
			if !results[i].Limited {
				_, results[i] = Decide(a, s.shards[idx[i]].load(c.Key, c.Limit), now, c.Limit, 0)
			}
		}
		return true
	}
	for i, c := range checks {
		s.shards[idx[i]].save(c.Key, states[i], a, c.Limit, now)
	}
	return false
}

// load returns key's state for limit l, or the zero State.
func (sh *shard) load(key []byte, l Limit) State {
	e, ok := sh.m[string(key)]
	if !ok || e.period != l.period {
		return State{}
	}
	return e.st
}

// save stores st, or drops the key when st no longer matters; a new key
// also makes the shard examine a few others for expiry.
func (sh *shard) save(key []byte, st State, a Algorithm, l Limit, now int64) {
	exp := st.Expires(a, l)
	if exp <= now {
		sh.drop(string(key))
		return
	}
	if _, ok := sh.m[string(key)]; !ok {
		sh.sweep(now, sampleOnWrite)
	}
	sh.put(key, entry{st: st, period: l.period, expires: exp})
}

// sweep examines up to budget keys, starting at a random one (Go's map
// iteration order), and removes those that no longer matter.
func (sh *shard) sweep(now int64, budget int) int {
	n, removed := 0, 0
	for k, e := range sh.m {
		if n >= budget {
			break
		}
		n++
		if e.expires <= now {
			sh.drop(k)
			removed++
		}
	}
	return removed
}

// Sweep examines up to budget keys of every shard, holding one shard lock
// at a time, and removes those that no longer matter; it returns how many
// it removed. A budget covering every key makes a full pass.
func (s *Store) Sweep(now int64, budget int) int {
	removed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		removed += sh.sweep(now, budget)
		sh.mu.Unlock()
	}
	return removed
}

// Delete removes key's state and reports whether it still mattered at now.
func (s *Store) Delete(key []byte, now int64) bool {
	sh := &s.shards[s.shardIndex(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	sh.drop(string(key))
	return ok && e.expires > now
}

// Len is the number of keys stored, including ones not yet swept.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Flush removes every key and returns how many were stored. It holds every
// shard lock at once, so the flush and its journal record are one step.
func (s *Store) Flush() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	for i := range s.shards {
		n += len(s.shards[i].m)
		s.shards[i].m = map[string]entry{}
	}
	if j := s.shards[0].journal; j != nil {
		j.Flush()
	}
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
	return n
}

// Expires returns when key's state stops mattering, if it still matters at
// now (EXISTS, TTL).
func (s *Store) Expires(key []byte, now int64) (int64, bool) {
	sh := &s.shards[s.shardIndex(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	if !ok || e.expires <= now {
		return 0, false
	}
	return e.expires, true
}
