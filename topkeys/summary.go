package topkeys

import "bytes"

// summary is one space-saving summary (Metwally, Agrawal and El Abbadi,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams",
// 2005): at most capacity counters, each naming an item (a source and a
// key). An item already counted is incremented; a new one takes a free
// counter, or else replaces the item with the smallest count and inherits
// that count plus one. So a counted item's count is at most its true count
// plus the smallest count, an item not counted occurred at most the
// smallest count times, and the smallest count is at most n/capacity after
// n increments.
//
// The counters form a min-heap on count (heap holds slot numbers), found
// by an open-addressing index on the item's hash. Nothing allocates once
// the slots exist, except a key longer than the buffer its slot already
// holds.
type summary struct {
	slots []slot   // len grows to capacity, then stays
	heap  []uint16 // slot numbers, a min-heap on count
	index []uint16 // linear probing on hash; 0 empty, else slot number + 1
	n     uint64   // increments since the last reset
}

// slot is one counter.
type slot struct {
	hash      uint64
	count     uint64
	key       []byte // at most Options.MaxKeyLen bytes
	src       Source
	pos       uint16 // index of the slot in heap
	truncated bool   // key is the first MaxKeyLen bytes of a longer key
}

// newSummary makes an empty summary of capacity counters (at most 1<<15).
func newSummary(capacity int) summary {
	size := 2
	for size < 2*capacity {
		size <<= 1
	}
	return summary{
		slots: make([]slot, 0, capacity),
		heap:  make([]uint16, 0, capacity),
		index: make([]uint16, size),
	}
}

// reset forgets every item, keeping the slots' buffers for reuse.
func (s *summary) reset() {
	s.slots = s.slots[:0]
	s.heap = s.heap[:0]
	clear(s.index)
	s.n = 0
}

// min is the smallest count when every counter is taken, else 0: the most
// an item's count in this summary can be off by.
func (s *summary) min() uint64 {
	if len(s.slots) < cap(s.slots) || len(s.heap) == 0 {
		return 0
	}
	return s.slots[s.heap[0]].count
}

// add counts one occurrence of the item (src, key), whose hash is h.
func (s *summary) add(h uint64, src Source, key []byte, truncated bool) {
	s.n++
	mask := uint64(len(s.index) - 1)
	i := h & mask
	for ; s.index[i] != 0; i = (i + 1) & mask {
		sl := &s.slots[s.index[i]-1]
		if sl.hash == h && sl.src == src && sl.truncated == truncated && bytes.Equal(sl.key, key) {
			sl.count++
			s.down(int(sl.pos))
			return
		}
	}
	if n := len(s.slots); n < cap(s.slots) {
		s.slots = s.slots[:n+1]
		sl := &s.slots[n]
		sl.hash, sl.count, sl.src, sl.truncated = h, 1, src, truncated
		sl.key = setKey(sl.key, key)
		sl.pos = uint16(len(s.heap))
		s.heap = append(s.heap, uint16(n))
		s.index[i] = uint16(n + 1)
		s.up(int(sl.pos))
		return
	}
	// Replace the item with the smallest count.
	id := s.heap[0]
	sl := &s.slots[id]
	s.unindex(sl.hash, id)
	sl.hash, sl.count, sl.src, sl.truncated = h, sl.count+1, src, truncated
	sl.key = append(sl.key[:0], key...)
	i = h & mask
	for s.index[i] != 0 {
		i = (i + 1) & mask
	}
	s.index[i] = id + 1
	s.down(0)
}

// unindex removes slot id, whose hash is h, from the index, shifting back
// the entries after it that would no longer be found (deletion without
// tombstones for linear probing).
func (s *summary) unindex(h uint64, id uint16) {
	mask := uint64(len(s.index) - 1)
	i := h & mask
	for s.index[i] != id+1 {
		i = (i + 1) & mask
	}
	for {
		s.index[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			e := s.index[j]
			if e == 0 {
				return
			}
			home := s.slots[e-1].hash & mask
			// The entry at j may move to the hole at i unless its home
			// lies cyclically in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				s.index[i] = e
				i = j
				break
			}
		}
	}
}

func (s *summary) less(a, b int) bool {
	return s.slots[s.heap[a]].count < s.slots[s.heap[b]].count
}

func (s *summary) swap(a, b int) {
	s.heap[a], s.heap[b] = s.heap[b], s.heap[a]
	s.slots[s.heap[a]].pos = uint16(a)
	s.slots[s.heap[b]].pos = uint16(b)
}

func (s *summary) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *summary) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && s.less(r, l) {
			c = r
		}
		if !s.less(c, i) {
			return
		}
		s.swap(i, c)
		i = c
	}
}

// setKey copies key into buf, reallocating only when buf is too small, in
// multiples of 16 bytes (Go's size classes up to 256 bytes), so that the
// memory a slot holds is what MaxMemory counts.
func setKey(buf, key []byte) []byte {
	if cap(buf) < len(key) {
		buf = make([]byte, 0, (len(key)+15)&^15)
	}
	return append(buf[:0], key...)
}
