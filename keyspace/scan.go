package keyspace

import (
	"bytes"
	"hash/maphash"
	"math"
	"strings"

	"github.com/sluicehq/sluice/keyspace/internal/table"
	"github.com/sluicehq/sluice/lease"
)

// Kinds is a set of kinds of state: one key name may hold several.
type Kinds uint8

// Has reports whether k is in the set.
func (ks Kinds) Has(k Kind) bool { return ks&(1<<k) != 0 }

// With is the set with k added.
func (ks Kinds) With(k Kind) Kinds { return ks | 1<<k }

// String names the kinds, as TYPE answers: "gcra", "gcra,window"; "none"
// for the empty set.
func (ks Kinds) String() string {
	var names []string
	for _, k := range []Kind{GCRA, Window, Lease} {
		if ks.Has(k) {
			names = append(names, k.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// KindsOf returns the kinds of state key holds that still matter at now
// (TYPE).
func (ks *Keyspace) KindsOf(key []byte, now int64) Kinds {
	s, h := ks.locate(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	var kinds Kinds
	if tat, ok := s.tats.Get(key, h); ok && tat > now {
		kinds = kinds.With(GCRA)
	}
	if e, ok := s.windows[string(key)]; ok && e.expires > now {
		kinds = kinds.With(Window)
	}
	if ls, ok := s.leases[string(key)]; ok && lease.Last(ls) > now {
		kinds = kinds.With(Lease)
	}
	return kinds
}

// Entry is one key a scan found.
type Entry struct {
	Key   []byte // a copy: the caller's to keep
	Kinds Kinds  // the kinds of state it holds that matter at the scan's now
}

// scanShardVisits bounds how many shards one Scan call looks at, so that a
// call over a nearly empty keyspace still returns soon.
const scanShardVisits = 256

// Scan is one step of a scan over every key, as Redis's SCAN: start with
// cursor 0 and pass each call the cursor the previous one returned, until
// it returns 0. A step looks at about count keys (more when keys share a
// hash tag, fewer when it reached the end) and appends to dst those whose
// state still matters at now, each key name once whatever kinds it holds.
//
// Guarantee: a key that holds state for the whole scan is returned at
// least once (in fact exactly once); a key added or removed during the scan
// may or may not be. Why: a shard's keys are visited in the order of a
// fixed 32-bit tag of their hash, and the cursor holds the shard and the
// next tag to visit. Each step takes, under the shard's lock, every key
// whose tag lies in [cursor's tag, boundary] — the boundary chosen so that
// about count keys lie below it, and including every key of the boundary
// tag — so consecutive steps cover the tags without gap or overlap, and
// resizes, sweeps and the order of Go maps cannot move a key out of the
// range a later step covers. A step costs one pass over the shard's keys
// under its lock (a few microseconds for a few thousand keys), not a
// snapshot kept between calls: the cursor is all the state, as in Redis.
//
// The cursor is meaningful for this keyspace only (the tags depend on a
// per-process seed); a cursor past the last shard ends the scan.
func (ks *Keyspace) Scan(cursor uint64, count int, now int64, dst []Entry) ([]Entry, uint64) {
	count = max(count, 1)
	shard, from := cursor>>32, uint32(cursor)
	seen := 0
	var tags []uint32
	for visits := 0; shard < uint64(len(ks.shards)) && visits < scanShardVisits && seen < count; visits++ {
		var boundary uint32
		var n int
		dst, tags, boundary, n = ks.scanShard(&ks.shards[shard], from, count-seen, now, dst, tags[:0])
		seen += n
		if boundary == math.MaxUint32 {
			shard, from = shard+1, 0
			continue
		}
		from = boundary + 1
	}
	if shard >= uint64(len(ks.shards)) {
		return dst, 0
	}
	return dst, shard<<32 | uint64(from)
}

// scanShard takes the keys of s whose tags lie in [from, boundary], where
// boundary is the want-th smallest tag at least from (math.MaxUint32 when
// the shard has no more than want such keys), appends the live ones to
// dst, and returns how many keys it looked at. tags is scratch.
func (ks *Keyspace) scanShard(s *shard, from uint32, want int, now int64, dst []Entry, tags []uint32) ([]Entry, []uint32, uint32, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tats.RangeTags(from, func(tag uint32, _ int) { tags = append(tags, tag) })
	for k := range s.windows {
		if tag := ks.tagOf(k); tag >= from {
			tags = append(tags, tag)
		}
	}
	for k := range s.leases {
		if tag := ks.tagOf(k); tag >= from {
			tags = append(tags, tag)
		}
	}
	boundary := uint32(math.MaxUint32)
	if len(tags) > want {
		boundary = nthSmallest(tags, want-1)
	}
	n := 0
	index := map[string]int{} // key name to its entry in dst, this shard only
	add := func(key []byte, k Kind) {
		if i, ok := index[string(key)]; ok {
			dst[i].Kinds = dst[i].Kinds.With(k)
			return
		}
		index[string(key)] = len(dst)
		dst = append(dst, Entry{Key: bytes.Clone(key), Kinds: Kinds(0).With(k)})
	}
	s.tats.RangeTags(from, func(tag uint32, slot int) {
		if tag > boundary {
			return
		}
		n++
		if s.tats.Value(slot) > now {
			add(s.tats.Key(slot), GCRA)
		}
	})
	for k, e := range s.windows {
		if tag := ks.tagOf(k); tag >= from && tag <= boundary {
			n++
			if e.expires > now {
				add([]byte(k), Window)
			}
		}
	}
	for k, ls := range s.leases {
		if tag := ks.tagOf(k); tag >= from && tag <= boundary {
			n++
			if lease.Last(ls) > now {
				add([]byte(k), Lease)
			}
		}
	}
	return dst, tags, boundary, n
}

// tagOf is the tag of a key held as a map key: the same as the table's for
// the same name.
func (ks *Keyspace) tagOf(key string) uint32 { return table.Tag(maphash.String(ks.seed, key)) }

// nthSmallest returns the value that would be at index n if tags were
// sorted (quickselect: linear on average; it reorders tags).
func nthSmallest(tags []uint32, n int) uint32 {
	lo, hi := 0, len(tags)-1
	for lo < hi {
		// Median of three as the pivot, then a three-way partition:
		// [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot.
		mid := lo + (hi-lo)/2
		a, b, c := tags[lo], tags[mid], tags[hi]
		pivot := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch {
			case tags[i] < pivot:
				tags[lt], tags[i] = tags[i], tags[lt]
				lt++
				i++
			case tags[i] > pivot:
				tags[i], tags[gt] = tags[gt], tags[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case n < lt:
			hi = lt - 1
		case n > gt:
			lo = gt + 1
		default:
			return pivot
		}
	}
	return tags[n]
}
