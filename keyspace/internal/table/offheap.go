package table

import "unsafe"

// Large slot arrays and key arenas live outside the Go heap, in anonymous
// memory mapped per allocation and unmapped the moment a resize or a flush
// replaces it. They hold no pointers, so the garbage collector never needed
// to see them; off the heap, resident memory tracks the live table exactly
// instead of carrying replaced arrays until a collection and the scavenger
// give them back. Small shards use the heap, where a page per shard would
// waste more than it saves.
const offHeapMin = 16 << 10

// block is memory for slots or arena bytes, and where it came from.
type block struct {
	mem    []byte
	mapped bool
}

func allocBlock(n int) block {
	if n >= offHeapMin {
		b, mapped := mapBytes(n)
		return block{mem: b, mapped: mapped}
	}
	return block{mem: make([]byte, n)}
}

func (b block) free() {
	if b.mapped {
		unmapBytes(b.mem)
	}
}

// allocSlots returns n empty slots.
func allocSlots(n int) ([]slot, block) {
	if n*slotBytes < offHeapMin {
		return make([]slot, n), block{}
	}
	b := allocBlock(n * slotBytes)
	return unsafe.Slice((*slot)(unsafe.Pointer(unsafe.SliceData(b.mem))), n), b
}

// growArena makes room for need more bytes in the table's arena, by a
// quarter at least, moving the keys to a new block.
func (t *Table) growArena(need int) {
	if len(t.arena)+need <= cap(t.arena) {
		return
	}
	size := max(len(t.arena)+need, cap(t.arena)+cap(t.arena)/4, 256)
	nb := allocBlock(size)
	arena := nb.mem[:len(t.arena)]
	copy(arena, t.arena)
	t.arenaMem.free()
	t.arena, t.arenaMem = arena, nb
}
