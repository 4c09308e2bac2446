// Package lease owns Sluice's concurrency limits: at most Max requests in
// flight per key, each holding a lease until it releases it or the lease's
// TTL passes, so a client that dies never holds a slot for ever.
//
// [Store] is sharded state, a Go map per shard behind its own mutex, holding
// for every key only its unexpired leases (ID and expiry). Time is injected:
// every method takes the current instant in Unix nanoseconds, so expiry is
// tested with a fake clock. A key whose leases have all expired is
// indistinguishable from a missing one and is reclaimed while serving
// writes and by [Store.Sweep].
package lease

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/sluicehq/sluice/internal/shardmap"
)

// Errors for invalid arguments; their text is the Redis error reply.
var (
	ErrMax = errors.New("ERR invalid max: must be >= 1")
	ErrTTL = errors.New("ERR invalid ttl: must be >= 1 millisecond and at most 2^40 ms")
)

// MaxTTL is the longest lease, in milliseconds (about 35 years).
const MaxTTL = 1 << 40

// Store holds every key's leases, sharded, each shard a map behind its own
// mutex (internal/shardmap). It is safe for concurrent use; build one with
// [NewStore].
type Store struct {
	m      *shardmap.Map[[]lease]
	nextID atomic.Int64
}

type lease struct {
	id      int64
	expires int64
}

// sampleOnWrite is how many other keys a new key makes its shard examine
// for expiry.
const sampleOnWrite = 2

// NewStore returns a store with shards shards, rounded up to a power of two.
func NewStore(shards int) *Store {
	return &Store{m: shardmap.New(shards, encodeLeases)}
}

// Journal receives every change to the stored leases while the key's shard
// lock is held: Put with the key's encoded leases (see Restore), Delete when
// a key holds none any more, Flush for Flush (with every lock held). key and
// value are valid only during the call. Persistence implements it.
type Journal = shardmap.Journal

// SetJournal makes the store journal its changes to j. Call it before the
// store is used.
func (s *Store) SetJournal(j Journal) { s.m.SetJournal(j) }

// encodeLeases appends each lease's id and expiry, big-endian.
func encodeLeases(dst []byte, ls []lease) []byte {
	for _, l := range ls {
		dst = binary.BigEndian.AppendUint64(dst, uint64(l.id))
		dst = binary.BigEndian.AppendUint64(dst, uint64(l.expires))
	}
	return dst
}

// Restore puts back a key's leases as a Journal's Put encoded them
// (recovery), dropping those expired at now. It reports false, storing
// nothing, when none is left or the value is malformed. Lease ids issued
// afterwards are larger than every restored one.
func (s *Store) Restore(key, value []byte, now int64) bool {
	if len(value) == 0 || len(value)%16 != 0 {
		return false
	}
	var ls []lease
	for p := 0; p < len(value); p += 16 {
		l := lease{id: int64(binary.BigEndian.Uint64(value[p:])), expires: int64(binary.BigEndian.Uint64(value[p+8:]))}
		if l.expires > now && l.id > 0 {
			ls = append(ls, l)
		}
		raise(&s.nextID, l.id)
	}
	if len(ls) == 0 {
		return false
	}
	sh := s.m.For(key)
	sh.Lock()
	sh.Restore(key, ls)
	sh.Unlock()
	return true
}

// SeedIDs makes every later lease id larger than min (after a restart,
// ids of leases released before it are never reused).
func (s *Store) SeedIDs(min int64) { raise(&s.nextID, min) }

// raise makes a at least v.
func raise(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// Result is the outcome of an acquisition.
type Result struct {
	Acquired bool
	ID       int64 // the new lease's ID (positive), or -1 when refused
	InFlight int64 // unexpired leases on the key, the new one included
	Max      int64
	// FreeAfter is the time in nanoseconds until a slot is free: 0 when one
	// is free now, else until the earliest lease expires (an early release
	// frees one sooner).
	FreeAfter int64
}

// live drops expired leases in place and returns the rest.
func live(ls []lease, now int64) []lease {
	out := ls[:0]
	for _, l := range ls {
		if l.expires > now {
			out = append(out, l)
		}
	}
	clear(ls[len(out):])
	return out
}

func freeAfter(ls []lease, max, now int64) int64 {
	if int64(len(ls)) < max {
		return 0
	}
	earliest := ls[0].expires
	for _, l := range ls[1:] {
		earliest = min(earliest, l.expires)
	}
	return earliest - now
}

func ttlNS(ttlMS int64) (int64, error) {
	if ttlMS < 1 || ttlMS > MaxTTL {
		return 0, ErrTTL
	}
	return ttlMS * 1e6, nil
}

// Acquire takes a lease on key for ttlMS milliseconds when fewer than max
// unexpired leases are held at now.
func (s *Store) Acquire(key []byte, now, max, ttlMS int64) (Result, error) {
	if max < 1 {
		return Result{}, ErrMax
	}
	ttl, err := ttlNS(ttlMS)
	if err != nil {
		return Result{}, err
	}
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	ls, found := sh.Get(key)
	ls = live(ls, now)
	r := Result{ID: -1, Max: max}
	if int64(len(ls)) < max {
		r.Acquired = true
		r.ID = s.nextID.Add(1)
		ls = append(ls, lease{id: r.ID, expires: now + ttl})
	}
	r.InFlight = int64(len(ls))
	r.FreeAfter = freeAfter(ls, max, now)
	switch {
	case len(ls) == 0:
		sh.Drop(key)
	case found:
		sh.Put(key, ls)
	default:
		sh.Sweep(sampleOnWrite, expired(now))
		sh.Put(key, ls)
	}
	return r, nil
}

// Release ends lease id on key. It reports whether the lease was held (not
// already released or expired) and how many leases remain in flight.
func (s *Store) Release(key []byte, id, now int64) (released bool, inFlight int64) {
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	ls, _ := sh.Get(key)
	ls = live(ls, now)
	for i, l := range ls {
		if l.id == id {
			ls[i] = ls[len(ls)-1]
			ls[len(ls)-1] = lease{}
			ls = ls[:len(ls)-1]
			released = true
			break
		}
	}
	store(sh, key, ls)
	return released, int64(len(ls))
}

// Renew extends lease id on key to expire ttlMS milliseconds after now. It
// reports whether the lease was still held (a lease that expired or was
// released cannot be renewed: acquire again) and how many are in flight.
func (s *Store) Renew(key []byte, id, now, ttlMS int64) (renewed bool, inFlight int64, err error) {
	ttl, err := ttlNS(ttlMS)
	if err != nil {
		return false, 0, err
	}
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	ls, _ := sh.Get(key)
	ls = live(ls, now)
	for i := range ls {
		if ls[i].id == id {
			ls[i].expires = now + ttl
			renewed = true
			break
		}
	}
	store(sh, key, ls)
	return renewed, int64(len(ls)), nil
}

// InFlight counts key's unexpired leases at now.
func (s *Store) InFlight(key []byte, now int64) int64 {
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	ls, _ := sh.Get(key)
	n := int64(0)
	for _, l := range ls {
		if l.expires > now {
			n++
		}
	}
	return n
}

// store writes ls back for an existing key, or drops the key when empty.
func store(sh *shardmap.Shard[[]lease], key []byte, ls []lease) {
	if len(ls) == 0 {
		sh.Drop(key)
		return
	}
	if _, ok := sh.Get(key); ok {
		sh.Put(key, ls)
	}
}

// expired is the sweep's trim: a key keeps its unexpired leases.
func expired(now int64) func([]lease) ([]lease, bool, bool) {
	return func(ls []lease) ([]lease, bool, bool) {
		n := len(ls)
		ls = live(ls, now)
		return ls, len(ls) > 0, len(ls) != n
	}
}

// Sweep examines up to budget keys of every shard, one shard lock at a
// time, drops expired leases and returns how many keys it removed.
func (s *Store) Sweep(now int64, budget int) int { return s.m.Sweep(budget, expired(now)) }

// Len is the number of keys holding leases, including expired ones not yet
// swept.
func (s *Store) Len() int { return s.m.Len() }

// Flush removes every key and its leases and returns how many keys there
// were. Lease ids keep counting, so an id from before is never reused. It
// holds every shard lock at once, so the flush and its journal record are
// one step.
func (s *Store) Flush() int { return s.m.Flush() }

// Expires returns when key's last unexpired lease expires, if it holds one
// at now (EXISTS, TTL).
func (s *Store) Expires(key []byte, now int64) (int64, bool) {
	sh := s.m.For(key)
	sh.Lock()
	defer sh.Unlock()
	ls, _ := sh.Get(key)
	last := int64(0)
	for _, l := range ls {
		last = max(last, l.expires)
	}
	return last, last > now
}
