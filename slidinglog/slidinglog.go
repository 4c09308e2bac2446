// Package slidinglog owns the sliding log: at most Max requests in any
// Period, counted exactly from the instants the admitted requests were made.
// It is the "moving window" of the Python limits library (and of
// Flask-Limiter): a request is admitted when the requests admitted in the
// last Period, plus its own quantity, stay within Max; a refused request
// leaves no trace.
//
// A log holds one [Entry] per instant at which requests were admitted, 16
// bytes each, and at most [MaxEntries] of them: it is exact for up to
// MaxEntries admitting calls within a period. Beyond that the oldest
// entries are merged pairwise, each pair counted from the later of its two
// instants, so a busy key's log stays within 16 KiB and can only refuse
// earlier than the exact log would, never admit more. Its functions are pure: they take a key's entries and the current
// instant (Unix nanoseconds) and return the entries to store and the reply.
// They never read a clock, never lock, and reuse the slice they are given.
// Package keyspace stores each key's log and calls them under the key's
// lock.
package slidinglog

import (
	"encoding/binary"
	"errors"
)

// Errors for invalid arguments.
var (
	ErrMax      = errors.New("invalid limit: must be >= 1")
	ErrPeriod   = errors.New("invalid period: must be >= 1 millisecond and at most 2^40 ms")
	ErrQuantity = errors.New("invalid quantity: must be >= 0")
)

// MaxPeriod is the longest period, in milliseconds (about 35 years).
const MaxPeriod = 1 << 40

// Limit is at most Max requests in any Period.
type Limit struct {
	max    int64
	period int64 // nanoseconds
}

// NewLimit validates max and a period in milliseconds.
func NewLimit(max, periodMS int64) (Limit, error) {
	if max < 1 {
		return Limit{}, ErrMax
	}
	if periodMS < 1 || periodMS > MaxPeriod {
		return Limit{}, ErrPeriod
	}
	return Limit{max: max, period: periodMS * 1e6}, nil
}

// Max is the most requests admitted in any Period.
func (l Limit) Max() int64 { return l.max }

// Period is the window's length in nanoseconds.
func (l Limit) Period() int64 { return l.period }

// Entry is N requests admitted at the instant At.
type Entry struct {
	At int64
	N  int64
}

// Result is the outcome of an acquisition, as THROTTLE's five numbers
// (durations in nanoseconds).
type Result struct {
	Limited   bool
	Limit     int64 // Max
	Remaining int64 // requests of quantity 1 that fit now
	// RetryAfter is, for a refused request, the time until the same
	// request would be admitted; -1 when it was admitted, or when its
	// quantity exceeds Max so it never can be.
	RetryAfter int64
	// ResetAfter is the time until the log is empty (the limit full again).
	ResetAfter int64
}

// Counting returns the part of es made less than period before now: the
// requests that still count. It shares es's array and changes nothing.
func Counting(es []Entry, now, period int64) []Entry {
	i := 0
	for i < len(es) && end(es[i].At, period) <= now {
		i++
	}
	return es[i:]
}

// Live drops, in place, the entries made period or longer before now and
// returns the rest: the requests that still count.
func Live(es []Entry, now, period int64) []Entry {
	i := len(es) - len(Counting(es, now, period))
	if i == 0 {
		return es
	}
	n := copy(es, es[i:])
	clear(es[n:])
	return es[:n]
}

// Count is the number of requests es holds (saturating at the largest
// int64).
func Count(es []Entry) int64 {
	n := int64(0)
	for _, e := range es {
		if n > 1<<63-1-e.N {
			return 1<<63 - 1
		}
		n += e.N
	}
	return n
}

// Acquire admits quantity requests at now when live (the key's entries
// within the period, see Live) leave room for them under l, and returns
// the entries to store. A quantity of 0 only reads the state. A clock that
// stepped back behind the newest entry counts the requests at that entry's
// instant, so the log stays ordered and the limit strict.
func Acquire(live []Entry, now int64, l Limit, quantity int64) ([]Entry, Result) {
	count := Count(live)
	r := Result{Limit: l.max, RetryAfter: -1}
	if quantity > 0 && (quantity > l.max || count > l.max-quantity) {
		r.Limited = true
		if quantity <= l.max {
			r.RetryAfter = leaves(live, count-(l.max-quantity), l.period, now)
		}
	} else if quantity > 0 {
		if n := len(live); n > 0 && live[n-1].At >= now {
			live[n-1].N += quantity // the same instant, or a clock that stepped back
		} else {
			live = compact(append(live, Entry{At: now, N: quantity}))
		}
		count += quantity
	}
	r.Remaining = max(0, l.max-count)
	if n := len(live); n > 0 {
		r.ResetAfter = max(0, end(live[n-1].At, l.period)-now)
	}
	return live, r
}

// end is at+period, saturated at the largest instant.
func end(at, period int64) int64 {
	if at > 1<<63-1-period {
		return 1<<63 - 1
	}
	return at + period
}

// Expires is when the last of es leaves a window of period.
func Expires(es []Entry, period int64) int64 {
	if len(es) == 0 {
		return 0
	}
	return end(es[len(es)-1].At, period)
}

// MaxEntries is the most entries a log keeps (see the package comment).
const MaxEntries = 1024

// compact merges the older half of es pairwise, in place, once es holds
// more than MaxEntries entries; each pair counts from its later instant.
func compact(es []Entry) []Entry {
	if len(es) <= MaxEntries {
		return es
	}
	half := len(es) / 2
	k := 0
	for i := 0; i+1 < half; i += 2 {
		es[k] = Entry{At: es[i+1].At, N: es[i].N + es[i+1].N}
		k++
	}
	k += copy(es[k:], es[half&^1:])
	clear(es[k:])
	return es[:k]
}

// leaves is the time until the oldest k requests of live have left the
// window.
func leaves(live []Entry, k, period, now int64) int64 {
	for _, e := range live {
		if k -= e.N; k <= 0 {
			return max(0, end(e.At, period)-now)
		}
	}
	return 0
}

// Window describes the requests that count at an instant: how many, and
// when the oldest of them and the last of them leave the window
// (nanoseconds from now, 0 when none count).
type Window struct {
	Count      int64
	NextLeaves int64
	AllLeave   int64
}

// Stat summarises live, the entries within period at now (see Live).
func Stat(live []Entry, now, period int64) Window {
	if len(live) == 0 {
		return Window{}
	}
	return Window{
		Count:      Count(live),
		NextLeaves: max(0, end(live[0].At, period)-now),
		AllLeave:   max(0, end(live[len(live)-1].At, period)-now),
	}
}

// entryBytes is the size of one encoded entry.
const entryBytes = 16

// ErrEncoding is returned by Decode for bytes Encode did not produce.
var ErrEncoding = errors.New("malformed sliding log encoding")

// Encode appends each entry's instant and count, big-endian.
func Encode(dst []byte, es []Entry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.At))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.N))
	}
	return dst
}

// Decode reads what Encode wrote: at least one entry, instants strictly
// increasing, counts positive.
func Decode(b []byte) ([]Entry, error) {
	if len(b) == 0 || len(b)%entryBytes != 0 {
		return nil, ErrEncoding
	}
	es := make([]Entry, 0, len(b)/entryBytes)
	for p := 0; p < len(b); p += entryBytes {
		e := Entry{At: int64(binary.BigEndian.Uint64(b[p:])), N: int64(binary.BigEndian.Uint64(b[p+8:]))}
		if e.N < 1 || (len(es) > 0 && e.At <= es[len(es)-1].At) {
			return nil, ErrEncoding
		}
		es = append(es, e)
	}
	return es, nil
}
