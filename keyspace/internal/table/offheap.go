package table

import (
	"sync/atomic"
	"unsafe"
)

// Large slot arrays and key arenas live outside the Go heap, in anonymous
// memory mapped per allocation and unmapped the moment a resize or a flush
// replaces it. They hold no pointers, so the garbage collector never needed
// to see them; off the heap, resident memory tracks the live table exactly
// instead of carrying replaced arrays until a collection and the scavenger
// give them back. Small shards use the heap, where a page per shard would
// waste more than it saves.
//
// The Go runtime does not see mapped memory, so the table counts it: its
// own MappedBytes, and, when the owner asked with CountMappedIn, a counter
// shared by many tables (the keyspace's used-memory figure), changed on
// every map and unmap and never read here.
const offHeapMin = 16 << 10

// block is memory for slots or arena bytes, and where it came from.
type block struct {
	mem    []byte
	mapped bool
}

// CountMappedIn makes the table add the bytes it maps to c and subtract
// those it unmaps, from now on; the bytes already mapped are added at
// once. c is shared by many tables and updated atomically.
func (t *Table) CountMappedIn(c *atomic.Int64) {
	t.counter = c
	c.Add(int64(t.mapped))
}

// MappedBytes is the memory the table holds outside the Go heap.
func (t *Table) MappedBytes() int { return t.mapped }

func (t *Table) account(n int) {
	t.mapped += n
	if t.counter != nil {
		t.counter.Add(int64(n))
	}
}

func (t *Table) allocBlock(n int) block {
	if n >= offHeapMin {
		b, mapped := mapBytes(n)
		if mapped {
			t.account(len(b))
		}
		return block{mem: b, mapped: mapped}
	}
	return block{mem: make([]byte, n)}
}

func (t *Table) free(b block) {
	if b.mapped {
		unmapBytes(b.mem)
		t.account(-len(b.mem))
	}
}

// allocSlots returns n empty slots.
func (t *Table) allocSlots(n int) ([]slot, block) {
	if n*slotBytes < offHeapMin {
		return make([]slot, n), block{}
	}
	b := t.allocBlock(n * slotBytes)
	return unsafe.Slice((*slot)(unsafe.Pointer(unsafe.SliceData(b.mem))), n), b
}

// growArena makes room for need more bytes in the table's arena, by a
// quarter at least, moving the keys to a new block.
func (t *Table) growArena(need int) {
	if len(t.arena)+need <= cap(t.arena) {
		return
	}
	size := max(len(t.arena)+need, cap(t.arena)+cap(t.arena)/4, 256)
	nb := t.allocBlock(size)
	arena := nb.mem[:len(t.arena)]
	copy(arena, t.arena)
	t.free(t.arenaMem)
	t.arena, t.arenaMem = arena, nb
}
