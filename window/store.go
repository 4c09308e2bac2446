package window

import (
	"encoding/binary"
	"slices"

	"github.com/sluicehq/sluice/gcra"
	"github.com/sluicehq/sluice/internal/shardmap"
)

// Store holds every key's window counters, sharded, each shard a map behind
// its own mutex (internal/shardmap). It is safe for concurrent use. The zero
// Store is not usable; build one with [NewStore].
type Store struct {
	m *shardmap.Map[entry]
}

// Journal receives every change to the stored windows while the key's
// shard lock is held: Put with the key's encoded state (see Restore),
// Delete when a key is removed, Flush for Flush (with every lock held).
// key and value are valid only during the call. Persistence implements it.
type Journal = shardmap.Journal

// SetJournal makes the store journal its changes to j. Call it before the
// store is used.
func (s *Store) SetJournal(j Journal) { s.m.SetJournal(j) }

// entryBytes is the size of an encoded entry: five big-endian int64s.
const entryBytes = 40

func encodeEntry(dst []byte, e entry) []byte {
	for _, v := range [5]int64{e.st.Start, e.st.Curr, e.st.Prev, e.period, e.expires} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	return dst
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
	sh := s.m.For(key)
	sh.Lock()
	sh.Restore(key, e)
	sh.Unlock()
	return true
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
	return &Store{m: shardmap.New(shards, encodeEntry)}
}

// expired is the sweep's trim: an entry matters until it expires.
func expired(now int64) func(entry) (entry, bool, bool) {
	return func(e entry) (entry, bool, bool) { return e, e.expires > now, false }
}

// Take applies one request of quantity to key at instant now with
// algorithm a and limit l, and stores the outcome.
func (s *Store) Take(a Algorithm, key []byte, now int64, l Limit, quantity int64) gcra.Result {
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	st := load(sh, key, l)
	newSt, r := Decide(a, st, now, l, quantity)
	if !r.Limited {
		save(sh, key, newSt, a, l, now)
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
	idx := make([]int, len(checks))
	order := make([]int, 0, len(checks))
	for i, c := range checks {
		idx[i] = s.m.Index(c.Key)
		if !slices.Contains(order, idx[i]) {
			order = append(order, idx[i])
		}
	}
	slices.Sort(order)
	for _, i := range order {
		s.m.Shard(i).Lock()
	}
	defer func() {
		for _, i := range order {
			s.m.Shard(i).Unlock()
		}
	}()
	states := make([]State, len(checks))
	for i, c := range checks {
		st := load(s.m.Shard(idx[i]), c.Key, c.Limit)
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
				_, results[i] = Decide(a, load(s.m.Shard(idx[i]), c.Key, c.Limit), now, c.Limit, 0)
			}
		}
		return true
	}
	for i, c := range checks {
		save(s.m.Shard(idx[i]), c.Key, states[i], a, c.Limit, now)
	}
	return false
}

// load returns key's state for limit l, or the zero State.
func load(sh *shardmap.Shard[entry], key []byte, l Limit) State {
	e, ok := sh.Get(key)
	if !ok || e.period != l.period {
		return State{}
	}
	return e.st
}

// save stores st, or drops the key when st no longer matters; a new key
// also makes the shard examine a few others for expiry.
func save(sh *shardmap.Shard[entry], key []byte, st State, a Algorithm, l Limit, now int64) {
	exp := st.Expires(a, l)
	if exp <= now {
		sh.Drop(key)
		return
	}
	if _, ok := sh.Get(key); !ok {
		sh.Sweep(sampleOnWrite, expired(now))
	}
	sh.Put(key, entry{st: st, period: l.period, expires: exp})
}

// Sweep examines up to budget keys of every shard, holding one shard lock
// at a time, and removes those that no longer matter; it returns how many
// it removed. A budget covering every key makes a full pass.
func (s *Store) Sweep(now int64, budget int) int { return s.m.Sweep(budget, expired(now)) }

// Delete removes key's state and reports whether it still mattered at now.
func (s *Store) Delete(key []byte, now int64) bool {
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	e, ok := sh.Get(key)
	sh.Drop(key)
	return ok && e.expires > now
}

// Len is the number of keys stored, including ones not yet swept.
func (s *Store) Len() int { return s.m.Len() }

// Flush removes every key and returns how many were stored. It holds every
// shard lock at once, so the flush and its journal record are one step.
func (s *Store) Flush() int { return s.m.Flush() }

// Expires returns when key's state stops mattering, if it still matters at
// now (EXISTS, TTL).
func (s *Store) Expires(key []byte, now int64) (int64, bool) {
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	e, ok := sh.Get(key)
	if !ok || e.expires <= now {
		return 0, false
	}
	return e.expires, true
}
