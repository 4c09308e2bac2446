// Package table owns the keyspace's hash table of GCRA state: one
// open-addressing table per keyspace shard, mapping a key to one int64 (its
// TAT), with keys in a byte arena and slots that hold no pointers, so a
// million keys cost the garbage collector nothing to scan and a lookup or
// update of an existing key allocates nothing. Large slot arrays and arenas
// live outside the Go heap (see offheap.go).
//
// A Table is not safe for concurrent use: the keyspace calls it with the
// shard's lock held. It knows nothing of time; the caller removes what has
// expired.
package table

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"
)

// ErrFull is returned when the table's key arena would pass MaxArena bytes.
var ErrFull = errors.New("state table shard is full")

// MaxArena bounds one table's key arena (offsets are 32-bit).
const MaxArena = 1 << 31

// MinSlots is the smallest number of slots a table keeps.
const MinSlots = 8

// slotBytes is the size of a slot.
const slotBytes = 16

// slot is one open-addressing cell; val == 0 marks it empty. Keys are
// stored in the arena as a uvarint length followed by the bytes, at off.
type slot struct {
	val  int64
	off  uint32
	hash uint32
}

// Table maps keys to non-zero int64 values. The zero Table is empty and
// ready to use.
type Table struct {
	slots    []slot // linear probing, homes by multiply-shift
	slotsMem block  // where slots live (see offheap.go)
	count    int
	arena    []byte
	arenaMem block
	dead     int           // arena bytes of removed keys
	cursor   int           // sweep position
	mapped   int           // bytes of slotsMem and arenaMem mapped off the heap
	counter  *atomic.Int64 // also counts mapped bytes, if set (see CountMappedIn)
}

// Len is the number of keys stored.
func (t *Table) Len() int { return t.count }

// Slots is the number of slots allocated.
func (t *Table) Slots() int { return len(t.slots) }

// ArenaBytes is the capacity of the key arena.
func (t *Table) ArenaBytes() int { return cap(t.arena) }

// homeOf maps a hash tag to its home slot in a table of n slots with a
// multiply-shift (any n works, so growth need not double).
func homeOf(tag uint32, n int) int { return int(uint64(tag) * uint64(n) >> 32) }

// tag is the part of a 64-bit hash the table uses: the high half (the
// keyspace picks shards with the low bits).
func tag(h uint64) uint32 { return uint32(h >> 32) }

// next is the slot after i, wrapping around.
func (t *Table) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// dist is how far j lies after i, cyclically.
func (t *Table) dist(i, j int) int {
	if j >= i {
		return j - i
	}
	return j - i + len(t.slots)
}

// grown is the slot count after growth: half again, so that the load
// factor moves between 1/2 and 3/4 instead of 3/8 and 3/4.
func grown(n int) int { return n + n/2 }

func (t *Table) keyAt(off uint32) []byte {
	n, w := binary.Uvarint(t.arena[off:])
	start := int(off) + w
	return t.arena[start : start+int(n)]
}

// Find returns the slot holding key, whose hash is h, and whether it was
// found; when not, the slot is where Insert would put it.
func (t *Table) Find(key []byte, h uint64) (int, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	tg := tag(h)
	for i := homeOf(tg, len(t.slots)); ; i = t.next(i) {
		sl := &t.slots[i]
		if sl.val == 0 {
			return i, false
		}
		if sl.hash == tg && bytes.Equal(t.keyAt(sl.off), key) {
			return i, true
		}
	}
}

// Get returns key's value, if it is stored.
func (t *Table) Get(key []byte, h uint64) (int64, bool) {
	if i, ok := t.Find(key, h); ok {
		return t.slots[i].val, true
	}
	return 0, false
}

// Value is the value of slot i, which Find reported found.
func (t *Table) Value(i int) int64 { return t.slots[i].val }

// SetValue replaces the value of slot i, which holds a key; v must not be 0.
func (t *Table) SetValue(i int, v int64) { t.slots[i].val = v }

// Key is the key of slot i, which holds one; it is valid until the table
// next changes.
func (t *Table) Key(i int) []byte { return t.keyAt(t.slots[i].off) }

// Insert stores a key that is not in the table, with hash h and value v
// (not 0), and returns its slot.
func (t *Table) Insert(key []byte, h uint64, v int64) (int, error) {
	if len(t.slots) == 0 {
		t.slots, t.slotsMem = t.allocSlots(MinSlots)
	}
	if (t.count+1)*4 > len(t.slots)*3 {
		t.resize(grown(len(t.slots)))
	}
	need := binary.MaxVarintLen64 + len(key)
	if len(t.arena)+need > MaxArena {
		t.compact()
		if len(t.arena)+need > MaxArena {
			return 0, ErrFull
		}
	}
	t.growArena(need)
	off := uint32(len(t.arena))
	t.arena = binary.AppendUvarint(t.arena, uint64(len(key)))
	t.arena = append(t.arena, key...) // within capacity: stays in its block
	i, _ := t.Find(key, h)
	t.slots[i] = slot{val: v, off: off, hash: tag(h)}
	t.count++
	return i, nil
}

// Remove empties slot i with backward-shift deletion, so lookups need no
// tombstones. A key slice from Key(i) may be overwritten by it.
func (t *Table) Remove(i int) {
	t.dead += t.entryLen(t.slots[i].off)
	t.count--
	for j := t.next(i); t.slots[j].val != 0; j = t.next(j) {
		home := homeOf(t.slots[j].hash, len(t.slots))
		// Move j back to i when its home is not within (i, j].
		if t.dist(home, j) >= t.dist(i, j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = slot{}
	if len(t.slots) > MinSlots && t.count*8 < len(t.slots) {
		t.resize(max(MinSlots, len(t.slots)/2))
	} else if t.dead > 4096 && t.dead*2 > len(t.arena) {
		t.compact()
	}
}

func (t *Table) entryLen(off uint32) int {
	n, w := binary.Uvarint(t.arena[off:])
	return w + int(n)
}

// Reset removes every key and returns the memory.
func (t *Table) Reset() {
	t.free(t.slotsMem)
	t.free(t.arenaMem)
	*t = Table{counter: t.counter}
}

// resize rehashes into n slots and compacts the arena.
func (t *Table) resize(n int) {
	old, oldArena := t.slots, t.arena
	oldSlotsMem, oldArenaMem := t.slotsMem, t.arenaMem
	defer t.free(oldSlotsMem)
	defer t.free(oldArenaMem)
	t.slots, t.slotsMem = t.allocSlots(n)
	t.arena, t.arenaMem = nil, block{}
	t.growArena((len(oldArena) - t.dead) * 5 / 4)
	t.dead, t.cursor = 0, 0
	for _, sl := range old {
		if sl.val == 0 {
			continue
		}
		nl, w := binary.Uvarint(oldArena[sl.off:])
		e := oldArena[sl.off : int(sl.off)+w+int(nl)]
		off := uint32(len(t.arena))
		t.growArena(len(e))
		t.arena = append(t.arena, e...)
		i := homeOf(sl.hash, n)
		for t.slots[i].val != 0 {
			i = t.next(i)
		}
		t.slots[i] = slot{val: sl.val, off: off, hash: sl.hash}
	}
}

func (t *Table) compact() { t.resize(len(t.slots)) }

// Sweep examines up to budget slots, continuing where the previous call
// stopped, and removes the keys whose value is not after now, calling
// removed with each key just before it goes, and returns how many keys it
// removed. However large the budget, it examines at most one full pass
// over the slots plus the keys it removes (a removal that shrinks the
// table starts the pass again over the smaller one), so a call always
// ends: with budget >= Slots()+Len() it is a full pass.
func (t *Table) Sweep(now int64, budget int, removed func(key []byte)) int {
	n := 0
	limit := min(budget, len(t.slots)+t.count)
	for step := 0; step < limit && t.count > 0; step++ {
		if t.cursor >= len(t.slots) {
			t.cursor = 0
		}
		sl := t.slots[t.cursor]
		if sl.val != 0 && sl.val <= now {
			size := len(t.slots)
			removed(t.keyAt(sl.off))
			t.Remove(t.cursor)
			n++
			if len(t.slots) != size {
				// Shrunk (at most a logarithmic number of times): start
				// the pass again over the smaller table.
				t.cursor, step = 0, -1
				limit = min(budget-n, len(t.slots)+t.count)
			}
			continue // another key may have shifted into this slot
		}
		t.cursor++
	}
	return n
}

// Range calls fn for every key and its value; fn must not change the
// table, and key is only valid during the call.
func (t *Table) Range(fn func(key []byte, v int64)) {
	for _, sl := range t.slots {
		if sl.val != 0 {
			fn(t.keyAt(sl.off), sl.val)
		}
	}
}

// Tag is the part of a key's 64-bit hash the table keeps in its slot (the
// high half): scans order a shard's keys by it.
func Tag(h uint64) uint32 { return tag(h) }

// RangeTags calls fn with the tag and slot of every key whose tag is at
// least from, in slot order; fn may read the slot (Key, Value) but must not
// change the table.
func (t *Table) RangeTags(from uint32, fn func(tag uint32, slot int)) {
	for i, sl := range t.slots {
		if sl.val != 0 && sl.hash >= from {
			fn(sl.hash, i)
		}
	}
}
