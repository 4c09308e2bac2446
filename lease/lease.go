// Package lease owns Sluice's concurrency-limit arithmetic: at most Max
// requests in flight per key, each holding a lease until it releases it or
// the lease's TTL passes, so a client that dies never holds a slot for ever.
//
// Its functions are pure: they take a key's leases and the current instant
// (Unix nanoseconds) and return the leases to store and the reply. They
// never read a clock, never lock, and reuse the slice they are given.
// Package keyspace stores each key's leases and calls them under the key's
// lock.
package lease

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
)

// Errors for invalid arguments.
var (
	ErrMax = errors.New("invalid max: must be >= 1")
	ErrTTL = errors.New("invalid ttl: must be >= 1 millisecond and at most 2^40 ms")
)

// MaxTTL is the longest lease, in milliseconds (about 35 years).
const MaxTTL = 1 << 40

// Lease is one lease: its ID and the instant it expires.
type Lease struct {
	ID      int64
	Expires int64
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

// TTL validates a lease duration in milliseconds and returns it in
// nanoseconds.
func TTL(ms int64) (int64, error) {
	if ms < 1 || ms > MaxTTL {
		return 0, ErrTTL
	}
	return ms * 1e6, nil
}

// expiry is now+ttl, saturated at the largest instant (a lease taken near
// the end of the clock expires at its end instead of wrapping into the
// past).
func expiry(now, ttl int64) int64 {
	if now > 1<<63-1-ttl {
		return 1<<63 - 1
	}
	return now + ttl
}

// Live drops the leases expired at now, in place, and returns the rest.
func Live(ls []Lease, now int64) []Lease {
	out := ls[:0]
	for _, l := range ls {
		if l.Expires > now {
			out = append(out, l)
		}
	}
	clear(ls[len(out):])
	return out
}

// Free reports whether live, the unexpired leases of a key, leave a slot
// free under max.
func Free(live []Lease, max int64) bool { return int64(len(live)) < max }

// Acquire takes a lease with ID id for ttl nanoseconds when live (the key's
// unexpired leases, see Live) leave a slot free under max (see Free), and
// returns the leases to store.
func Acquire(live []Lease, now, max, ttl, id int64) ([]Lease, Result) {
	r := Result{ID: -1, Max: max}
	if Free(live, max) {
		r.Acquired = true
		r.ID = id
		live = append(live, Lease{ID: id, Expires: expiry(now, ttl)})
	}
	r.InFlight = int64(len(live))
	r.FreeAfter = freeAfter(live, max, now)
	return live, r
}

func freeAfter(ls []Lease, max, now int64) int64 {
	if int64(len(ls)) < max {
		return 0
	}
	earliest := ls[0].Expires
	for _, l := range ls[1:] {
		earliest = min(earliest, l.Expires)
	}
	return earliest - now
}

// Release ends lease id among live and returns the leases left and whether
// it was held (not already released or expired).
func Release(live []Lease, id int64) ([]Lease, bool) {
	for i, l := range live {
		if l.ID == id {
			live[i] = live[len(live)-1]
			live[len(live)-1] = Lease{}
			return live[:len(live)-1], true
		}
	}
	return live, false
}

// Renew makes lease id among live expire ttl nanoseconds after now, or
// later if it already did (a clock that stepped back never shortens a
// lease), and reports whether it was still held (a lease that expired or
// was released cannot be renewed: acquire again).
func Renew(live []Lease, id, now, ttl int64) bool {
	for i := range live {
		if live[i].ID == id {
			live[i].Expires = max(live[i].Expires, expiry(now, ttl))
			return true
		}
	}
	return false
}

// Last is when the last of ls expires (0 for none).
func Last(ls []Lease) int64 {
	last := int64(0)
	for _, l := range ls {
		last = max(last, l.Expires)
	}
	return last
}

// MaxID is the largest lease ID; IDs are 1..MaxID, so that any 62 random
// bits make one (see NewID).
const MaxID = 1 << 62

// NewID draws a lease ID from rnd, uniform in 1..MaxID, that no lease of
// live holds. With rnd a cryptographically strong source, an ID is a
// handle nobody can guess (one chance in 2^62 per try) and says nothing of
// how many leases were taken before it; drawing again on a clash with a
// live lease makes it unique on its key, restored leases included.
func NewID(live []Lease, rnd rand.Source) int64 {
	for {
		id := int64(rnd.Uint64()>>2) + 1
		if !held(live, id) {
			return id
		}
	}
}

func held(live []Lease, id int64) bool {
	for _, l := range live {
		if l.ID == id {
			return true
		}
	}
	return false
}

// leaseBytes is the size of one encoded lease.
const leaseBytes = 16

// ErrEncoding is returned by Decode for bytes Encode did not produce.
var ErrEncoding = errors.New("malformed lease encoding")

// Encode appends each lease's ID and expiry, big-endian.
func Encode(dst []byte, ls []Lease) []byte {
	for _, l := range ls {
		dst = binary.BigEndian.AppendUint64(dst, uint64(l.ID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(l.Expires))
	}
	return dst
}

// Decode reads what Encode wrote; an ID outside 1..MaxID is malformed.
func Decode(b []byte) ([]Lease, error) {
	if len(b) == 0 || len(b)%leaseBytes != 0 {
		return nil, ErrEncoding
	}
	ls := make([]Lease, 0, len(b)/leaseBytes)
	for p := 0; p < len(b); p += leaseBytes {
		l := Lease{ID: int64(binary.BigEndian.Uint64(b[p:])), Expires: int64(binary.BigEndian.Uint64(b[p+8:]))}
		if l.ID < 1 || l.ID > MaxID {
			return nil, ErrEncoding
		}
		ls = append(ls, l)
	}
	return ls, nil
}
