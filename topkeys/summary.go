package topkeys

import "bytes"

// summary is one space-saving summary (Metwally, Agrawal and El Abbadi,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams",
// 2005): at most capacity counters, each naming an item (a source and a
// key). An item already counted is incremented; a new one takes a free
// counter, or else replaces the item with the smallest count and inherits
// that count plus its own. So a counted item's count is at most its true
// count plus the smallest count, an item not counted occurred at most the
// smallest count times, and the smallest count is at most n/capacity after
// increments adding up to n (weighted increments keep these guarantees).
//
// Items are found by an open-addressing index on their hash. The counts
// sit in one array apart from the rest: incrementing touches one word, and
// finding the smallest count, which only a replacement needs, scans
// capacity contiguous words (no heap to maintain on every increment).
// Nothing allocates once the slots exist, except a key longer than the
// buffer its slot already holds.
type summary struct {
	counts []uint64 // by slot; len grows to capacity, then stays
	slots  []slot   // the items, len(slots) == len(counts)
	index  []uint16 // linear probing on hash; 0 empty, else slot number + 1
	n      uint64   // increments since the last reset
}

// slot is one counter's item.
type slot struct {
	hash      uint64
	key       []byte // at most Options.MaxKeyLen bytes
	src       Source
	truncated bool // key is the first MaxKeyLen bytes of a longer key
}

// newSummary makes an empty summary of capacity counters (at most 1<<15).
func newSummary(capacity int) summary {
	size := 2
	for size < 2*capacity {
		size <<= 1
	}
	return summary{
		counts: make([]uint64, 0, capacity),
		slots:  make([]slot, 0, capacity),
		index:  make([]uint16, size),
	}
}

// reset forgets every item, keeping the slots' buffers for reuse.
func (s *summary) reset() {
	s.counts = s.counts[:0]
	s.slots = s.slots[:0]
	clear(s.index)
	s.n = 0
}

// smallest returns the slot with the smallest count.
func (s *summary) smallest() int {
	at, least := 0, s.counts[0]
	for i, c := range s.counts[1:] {
		if c < least {
			at, least = i+1, c
		}
	}
	return at
}

// min is the smallest count when every counter is taken, else 0: the most
// an item's count in this summary can be off by.
func (s *summary) min() uint64 {
	if len(s.counts) == 0 || len(s.counts) < cap(s.counts) {
		return 0
	}
	return s.counts[s.smallest()]
}

// add counts w occurrences of the item (src, key), whose hash is h.
func (s *summary) add(h uint64, src Source, key []byte, truncated bool, w uint64) {
	s.n += w
	mask := uint64(len(s.index) - 1)
	i := h & mask
	for ; s.index[i] != 0; i = (i + 1) & mask {
		id := s.index[i] - 1
		sl := &s.slots[id]
		if sl.hash == h && sl.src == src && sl.truncated == truncated && bytes.Equal(sl.key, key) {
			s.counts[id] += w
			return
		}
	}
	var id int
	if n := len(s.counts); n < cap(s.counts) {
		id = n
		s.counts = append(s.counts, w)
		s.slots = s.slots[:n+1]
	} else { // replace the item with the smallest count
		id = s.smallest()
		s.unindex(s.slots[id].hash, uint16(id))
		s.counts[id] += w
		for i = h & mask; s.index[i] != 0; i = (i + 1) & mask {
		}
	}
	sl := &s.slots[id]
	sl.hash, sl.src, sl.truncated = h, src, truncated
	sl.key = setKey(sl.key, key)
	s.index[i] = uint16(id + 1)
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

// setKey copies key into buf, reallocating only when buf is too small, in
// multiples of 16 bytes (Go's size classes up to 256 bytes), so that the
// memory a slot holds is what MaxMemory counts.
func setKey(buf, key []byte) []byte {
	if cap(buf) < len(key) {
		buf = make([]byte, 0, (len(key)+15)&^15)
	}
	return append(buf[:0], key...)
}
