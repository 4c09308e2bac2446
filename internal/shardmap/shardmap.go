// Package shardmap owns the keyed state of the stores other than the GCRA
// table (window counters, leases): a Go map per power-of-two shard behind
// its own mutex, journalling every change to an optional [Journal] while
// the shard lock is held, with bounded sweeps of state that stopped
// mattering. The stores decide what a value means and when it expires;
// this package keeps the locking, journalling and flushing in one place.
package shardmap

import (
	"hash/maphash"
	"math/bits"
	"sync"
)

// Journal receives every change while the key's shard lock is held: Put
// with the encoded value, Delete when a key is removed, Flush for Flush
// (with every lock held). key and value are valid only during the call.
// Persistence implements it.
type Journal interface {
	Put(key, value []byte)
	Delete(key []byte)
	Flush()
}

// Map maps keys to values of type V.
type Map[V any] struct {
	shards []Shard[V]
	mask   uint64
	seed   maphash.Seed
}

// Shard is one lock's worth of a Map. Its methods other than Lock and
// Unlock must be called with the lock held.
type Shard[V any] struct {
	mu      sync.Mutex
	m       map[string]V
	journal Journal
	encode  func(dst []byte, v V) []byte
	_       [64]byte // keep neighbouring shards' locks off one cache line
}

// New returns a map with shards shards, rounded up to a power of two;
// encode appends a value's journal form to dst.
func New[V any](shards int, encode func(dst []byte, v V) []byte) *Map[V] {
	if shards < 1 {
		shards = 1
	}
	n := 1 << bits.Len(uint(shards-1))
	m := &Map[V]{shards: make([]Shard[V], n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = map[string]V{}
		m.shards[i].encode = encode
	}
	return m
}

// SetJournal makes the map journal its changes to j. Call it before use.
func (m *Map[V]) SetJournal(j Journal) {
	for i := range m.shards {
		m.shards[i].journal = j
	}
}

// Index is the index of key's shard; lock several shards in ascending
// index order.
func (m *Map[V]) Index(key []byte) int { return int(maphash.Bytes(m.seed, key) & m.mask) }

// Shard returns shard i.
func (m *Map[V]) Shard(i int) *Shard[V] { return &m.shards[i] }

// For returns key's shard.
func (m *Map[V]) For(key []byte) *Shard[V] { return &m.shards[m.Index(key)] }

// Sweep examines up to budget keys of every shard, one shard lock at a
// time, and returns how many keys it removed; see Shard.Sweep.
func (m *Map[V]) Sweep(budget int, trim func(v V) (V, bool, bool)) int {
	removed := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		removed += sh.Sweep(budget, trim)
		sh.mu.Unlock()
	}
	return removed
}

// Len is the number of keys stored, including ones not yet swept.
func (m *Map[V]) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Flush removes every key and returns how many were stored. It holds every
// shard lock at once, so the flush and its journal record are one step.
func (m *Map[V]) Flush() int {
	for i := range m.shards {
		m.shards[i].mu.Lock()
	}
	n := 0
	for i := range m.shards {
		n += len(m.shards[i].m)
		m.shards[i].m = map[string]V{}
	}
	if j := m.shards[0].journal; j != nil {
		j.Flush()
	}
	for i := range m.shards {
		m.shards[i].mu.Unlock()
	}
	return n
}

// Lock locks the shard.
func (s *Shard[V]) Lock() { s.mu.Lock() }

// Unlock unlocks the shard.
func (s *Shard[V]) Unlock() { s.mu.Unlock() }

// Get returns key's value.
func (s *Shard[V]) Get(key []byte) (V, bool) {
	v, ok := s.m[string(key)]
	return v, ok
}

// Put stores v for key and journals it.
func (s *Shard[V]) Put(key []byte, v V) {
	s.m[string(key)] = v
	if s.journal != nil {
		var buf [64]byte
		s.journal.Put(key, s.encode(buf[:0], v))
	}
}

// Restore stores v for key without journalling it (recovery).
func (s *Shard[V]) Restore(key []byte, v V) { s.m[string(key)] = v }

// Drop removes key, journalling the removal, and reports whether it was
// there.
func (s *Shard[V]) Drop(key []byte) bool { return s.drop(string(key)) }

func (s *Shard[V]) drop(key string) bool {
	if _, ok := s.m[key]; !ok {
		return false
	}
	delete(s.m, key)
	if s.journal != nil {
		s.journal.Delete([]byte(key))
	}
	return true
}

// Sweep examines up to budget keys, starting at a random one (Go's map
// iteration order). trim returns what of a value still matters, whether
// anything does (else the key is removed) and whether it changed (then it
// is stored and journalled). It returns how many keys it removed.
func (s *Shard[V]) Sweep(budget int, trim func(v V) (V, bool, bool)) int {
	n, removed := 0, 0
	for k, v := range s.m {
		if n >= budget {
			break
		}
		n++
		nv, keep, changed := trim(v)
		switch {
		case !keep:
			s.drop(k)
			removed++
		case changed:
			s.Put([]byte(k), nv)
		}
	}
	return removed
}
