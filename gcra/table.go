package gcra

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
	"sync"
)

// ErrShardFull is returned when one shard's key arena would pass 1 GiB.
var ErrShardFull = errors.New("ERR state table shard is full")

// Journal receives every change to the table, in order per key, while the
// key's shard lock is held: tat is the new TAT, or 0 when the key was
// removed; key is valid only during the call. RecordCreate is Record for a
// key the table did not hold (a journal may then know that the key has no
// older state to remove). RecordForget is Record(key, 0) for a key that
// neither Dirty nor Current reported and Set did not store since the table
// created it: a journal that stores only what its records, Dirty and
// Current gave it has stored nothing of the key but what the key's own
// records say. RecordFlush is called for
// Flush while every shard lock is held, so no change can fall between the
// flush and its record. Persistence implements it; the table never waits
// on it.
type Journal interface {
	Record(key []byte, tat int64)
	RecordCreate(key []byte, tat int64)
	RecordForget(key []byte)
	RecordFlush()
}

// Table is the sharded state: for every key, its TAT. It is safe for
// concurrent use; each shard has its own lock.
type Table struct {
	shards  []shard
	mask    uint64
	seed    maphash.Seed
	journal Journal
}

// TableStats are counters summed over all shards.
type TableStats struct {
	Keys      int    // keys stored, including expired ones not yet swept
	Slots     int    // hash slots allocated
	KeyBytes  int    // bytes of key arena allocated
	Allowed   uint64 // THROTTLE decisions that admitted
	Limited   uint64 // THROTTLE decisions that refused
	Reclaimed uint64 // expired keys removed by Sweep
}

const (
	minSlots  = 8
	slotBytes = 16
)

// NewTable returns a table with the given number of shards, rounded up to a
// power of two (at least 1). journal may be nil.
func NewTable(shards int, journal Journal) *Table {
	if shards < 1 {
		shards = 1
	}
	n := 1 << bits.Len(uint(shards-1))
	t := &Table{shards: make([]shard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(), journal: journal}
	for i := range t.shards {
		t.shards[i].slots, _ = allocSlots(minSlots)
	}
	return t
}

// Shards is the number of shards.
func (t *Table) Shards() int { return len(t.shards) }

func (t *Table) locate(key []byte) (*shard, uint64) {
	h := maphash.Bytes(t.seed, key)
	return &t.shards[h&t.mask], h
}

// Throttle applies one GCRA request to key at instant now and stores the
// result. It allocates only when a new key needs arena or slot space.
func (t *Table) Throttle(key []byte, now int64, l Limit, quantity int64) (Result, error) {
	s, h := t.locate(key)
	s.mu.Lock()
	i, found := s.find(key, h)
	var tat int64
	if found {
		tat = s.slots[i].tat
	}
	newTAT, r, err := Decide(tat, now, l, quantity)
	if err == nil {
		if r.Limited {
			s.limited++
		} else {
			s.allowed++
		}
		err = t.store(s, i, found, key, h, tat, newTAT, now)
	}
	s.mu.Unlock()
	return r, err
}

// store writes newTAT for key, dropping the key when newTAT is not after now.
// Called with s.mu held.
func (t *Table) store(s *shard, i int, found bool, key []byte, h uint64, old, newTAT, now int64) error {
	switch {
	case newTAT <= now:
		if found {
			t.remove(s, i, key)
		}
	case found:
		if newTAT != old {
			s.slots[i].tat = newTAT
			t.changed(s, i, key, false)
		}
	default:
		i, err := s.insert(key, h, newTAT)
		if err != nil {
			return err
		}
		t.changed(s, i, key, true)
	}
	return nil
}

// changed marks slot i of s, which holds key and was just given its TAT by
// a change, for Dirty and journals the change (created: the table did not
// hold key before). Called with s.mu held.
func (t *Table) changed(s *shard, i int, key []byte, created bool) {
	s.slots[i].off |= dirtyBit
	switch {
	case t.journal == nil:
	case created:
		t.journal.RecordCreate(key, s.slots[i].tat)
	default:
		t.journal.Record(key, s.slots[i].tat)
	}
}

// remove removes slot i of s, which holds key, and journals the removal.
// Called with s.mu held.
func (t *Table) remove(s *shard, i int, key []byte) {
	switch {
	case t.journal == nil:
	case s.slots[i].off&storedBit != 0:
		t.journal.Record(key, 0)
	default:
		t.journal.RecordForget(key)
	}
	s.remove(i) // last: key may alias the arena, which removing can free
}

// Get returns key's TAT when it is after now.
func (t *Table) Get(key []byte, now int64) (int64, bool) {
	s, h := t.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.find(key, h); ok && s.slots[i].tat > now {
		return s.slots[i].tat, true
	}
	return 0, false
}

// Set stores tat for key (recovery, replication). A tat not after now removes
// the key. The journal is not told: the caller already has the change (the
// key counts as stored, see Journal).
func (t *Table) Set(key []byte, tat, now int64) error {
	s, h := t.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.find(key, h)
	switch {
	case tat <= now:
		if found {
			s.remove(i)
		}
	case found:
		s.slots[i].tat = tat
		s.slots[i].off |= storedBit
	default:
		i, err := s.insert(key, h, tat)
		if err != nil {
			return err
		}
		s.slots[i].off |= storedBit
	}
	return nil
}

// Delete removes key and reports whether it held a live (after now) TAT.
func (t *Table) Delete(key []byte, now int64) bool {
	s, h := t.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.find(key, h)
	if !found {
		return false
	}
	live := s.slots[i].tat > now
	t.remove(s, i, key)
	return live
}

// Flush removes every key and returns how many were stored.
// It holds every shard lock at once (taken in index order) so the flush is
// one atomic step for concurrent THROTTLEs and for the journal.
func (t *Table) Flush() int {
	n := 0
	for i := range t.shards {
		t.shards[i].mu.Lock()
	}
	for i := range t.shards {
		n += t.shards[i].count
		t.shards[i].reset(minSlots)
	}
	if t.journal != nil {
		t.journal.RecordFlush()
	}
	for i := range t.shards {
		t.shards[i].mu.Unlock()
	}
	return n
}

// Sweep examines up to budget slots of every shard, continuing where the
// previous call stopped, and removes keys whose TAT is not after now. It
// holds one shard lock at a time and returns how many keys it removed. A
// budget covering every slot makes a full pass.
func (t *Table) Sweep(now int64, budget int) int {
	removed := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		removed += s.sweep(t, now, budget)
		s.mu.Unlock()
	}
	return removed
}

// Stats sums the shards' counters.
func (t *Table) Stats() TableStats {
	var st TableStats
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Keys += s.count
		st.Slots += len(s.slots)
		st.KeyBytes += cap(s.arena)
		st.Allowed += s.allowed
		st.Limited += s.limited
		st.Reclaimed += s.reclaimed
		s.mu.Unlock()
	}
	return st
}

// Len is the number of stored keys, including expired ones not yet swept.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}

// Dirty calls fn for every key whose TAT a journalled change (not Set) gave
// it since the previous call, with that TAT, and forgets that they changed.
// It works one shard at a time under that shard's lock, so fn must be quick
// (copy what it needs: key is only valid during the call). A journal can
// thus take the last state of every changed key from the table instead of
// replaying each change.
func (t *Table) Dirty(fn func(key []byte, tat int64)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := range s.slots {
			if sl := &s.slots[j]; sl.off&dirtyBit != 0 && sl.tat != 0 {
				sl.off = sl.off&^dirtyBit | storedBit
				fn(s.key(sl.off), sl.tat)
			}
		}
		s.mu.Unlock()
	}
}

// Current returns key's TAT, whether or not it has passed, for a journal
// that stores it: the key then counts as stored (see Journal).
func (t *Table) Current(key []byte) (int64, bool) {
	s, h := t.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.find(key, h)
	if !ok {
		return 0, false
	}
	s.slots[i].off |= storedBit
	return s.slots[i].tat, true
}

// Range calls fn for every key whose TAT is after now, one shard at a time
// under that shard's lock; key is only valid during the call.
func (t *Table) Range(now int64, fn func(key []byte, tat int64)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, sl := range s.slots {
			if sl.tat > now {
				fn(s.key(sl.off), sl.tat)
			}
		}
		s.mu.Unlock()
	}
}

// slot is one open-addressing cell; tat == 0 marks it empty. Keys are stored
// in the shard's arena as a uvarint length followed by the bytes, at off
// without flagBits; dirtyBit says a journalled change set tat since the last
// Dirty, storedBit that Dirty or Current reported the key or Set stored it.
type slot struct {
	tat  int64
	off  uint32
	hash uint32
}

type shard struct {
	mu        sync.Mutex
	slots     []slot // linear probing, homes by multiply-shift
	slotsMem  block  // where slots live (see offheap.go)
	count     int
	arena     []byte
	arenaMem  block
	dead      int // arena bytes of removed keys
	cursor    int // sweep position
	allowed   uint64
	limited   uint64
	reclaimed uint64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

// homeOf maps a hash tag to its home slot in a table of n slots with a
// multiply-shift (any n works, so growth need not double).
func homeOf(tag uint32, n int) int { return int(uint64(tag) * uint64(n) >> 32) }

func (s *shard) home(h uint64) int { return homeOf(uint32(h>>32), len(s.slots)) }

// next is the slot after i, wrapping around.
func (s *shard) next(i int) int {
	if i++; i == len(s.slots) {
		return 0
	}
	return i
}

// dist is how far j lies after i, cyclically.
func (s *shard) dist(i, j int) int {
	if j >= i {
		return j - i
	}
	return j - i + len(s.slots)
}

// grown is the slot count after growth: half again, so that the load
// factor moves between 1/2 and 3/4 instead of 3/8 and 3/4.
func grown(n int) int { return n + n/2 }

// dirtyBit and storedBit are flags of slot.off (see slot); arena offsets
// stay below both.
const (
	dirtyBit  = 1 << 31
	storedBit = 1 << 30
	flagBits  = dirtyBit | storedBit
)

func (s *shard) key(off uint32) []byte {
	off &^= flagBits
	n, w := binary.Uvarint(s.arena[off:])
	start := int(off) + w
	return s.arena[start : start+int(n)]
}

func (s *shard) find(key []byte, h uint64) (int, bool) {
	tag := uint32(h >> 32)
	for i := s.home(h); ; i = s.next(i) {
		sl := &s.slots[i]
		if sl.tat == 0 {
			return i, false
		}
		if sl.hash == tag && bytes.Equal(s.key(sl.off), key) {
			return i, true
		}
	}
}

// insert stores a new key and returns its slot.
func (s *shard) insert(key []byte, h uint64, tat int64) (int, error) {
	if (s.count+1)*4 > len(s.slots)*3 {
		s.resize(grown(len(s.slots)))
	}
	need := binary.MaxVarintLen64 + len(key)
	if len(s.arena)+need > storedBit {
		s.compact()
		if len(s.arena)+need > storedBit {
			return 0, ErrShardFull
		}
	}
	s.growArena(need)
	off := uint32(len(s.arena))
	s.arena = binary.AppendUvarint(s.arena, uint64(len(key)))
	s.arena = append(s.arena, key...) // within capacity: stays in its block
	i, _ := s.find(key, h)
	s.slots[i] = slot{tat: tat, off: off, hash: uint32(h >> 32)}
	s.count++
	return i, nil
}

// remove empties slot i with backward-shift deletion, so lookups need no
// tombstones.
func (s *shard) remove(i int) {
	s.dead += s.entryLen(s.slots[i].off)
	s.count--
	for j := s.next(i); s.slots[j].tat != 0; j = s.next(j) {
		home := homeOf(s.slots[j].hash, len(s.slots))
		// Move j back to i when its home is not within (i, j].
		if s.dist(home, j) >= s.dist(i, j) {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = slot{}
	if len(s.slots) > minSlots && s.count*8 < len(s.slots) {
		s.resize(max(minSlots, len(s.slots)/2))
	} else if s.dead > 4096 && s.dead*2 > len(s.arena) {
		s.compact()
	}
}

func (s *shard) entryLen(off uint32) int {
	off &^= flagBits
	n, w := binary.Uvarint(s.arena[off:])
	return w + int(n)
}

func (s *shard) reset(n int) {
	s.slotsMem.free()
	s.arenaMem.free()
	s.slots, s.slotsMem = allocSlots(n)
	s.arena, s.arenaMem = nil, block{}
	s.count, s.dead, s.cursor = 0, 0, 0
}

// resize rehashes into n slots and compacts the arena.
func (s *shard) resize(n int) {
	old, oldArena := s.slots, s.arena
	oldSlotsMem, oldArenaMem := s.slotsMem, s.arenaMem
	defer oldSlotsMem.free()
	defer oldArenaMem.free()
	s.slots, s.slotsMem = allocSlots(n)
	s.arena, s.arenaMem = nil, block{}
	s.growArena((len(oldArena) - s.dead) * 5 / 4)
	s.dead, s.cursor = 0, 0
	for _, sl := range old {
		if sl.tat == 0 {
			continue
		}
		at := sl.off &^ flagBits
		nl, w := binary.Uvarint(oldArena[at:])
		e := oldArena[at : int(at)+w+int(nl)]
		off := uint32(len(s.arena))
		s.growArena(len(e))
		s.arena = append(s.arena, e...)
		i := homeOf(sl.hash, n)
		for s.slots[i].tat != 0 {
			i = s.next(i)
		}
		s.slots[i] = slot{tat: sl.tat, off: off | sl.off&flagBits, hash: sl.hash}
	}
}

func (s *shard) compact() { s.resize(len(s.slots)) }

func (s *shard) sweep(t *Table, now int64, budget int) int {
	removed := 0
	for n := 0; n < budget && s.count > 0; n++ {
		if s.cursor >= len(s.slots) {
			s.cursor = 0
		}
		sl := s.slots[s.cursor]
		if sl.tat != 0 && sl.tat <= now {
			size := len(s.slots)
			t.remove(s, s.cursor, s.key(sl.off))
			removed++
			s.reclaimed++
			if len(s.slots) != size {
				s.cursor = 0 // resized: start the pass again
			}
			continue // another key may have shifted into this slot
		}
		s.cursor++
	}
	return removed
}

// SweepStep is one background pass of reclaiming expired keys at instant
// now: it examines a tenth of each shard's slots (at least 64), so every
// slot is visited within about ten passes, holding one shard lock for one
// bounded step at a time.
func (t *Table) SweepStep(now int64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.sweep(t, now, len(s.slots)/10+64)
		s.mu.Unlock()
	}
}
