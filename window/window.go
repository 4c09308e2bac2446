// Package window owns Sluice's window-counter algorithms and their state:
// the fixed window (at most Count requests in each aligned Period) and the
// sliding-window counter (the previous window's count weighted by how much
// of it still overlaps the last Period, plus the current window's count, as
// Cloudflare describes it).
//
// [Decide] is a pure function of a key's [State], the current instant, the
// [Limit] and the quantity: it never reads a clock, never locks and never
// allocates. It answers with a gcra.Result, so every algorithm replies with
// THROTTLE's five numbers. [Store] is the sharded in-memory state, a Go map
// per shard behind its own mutex; it reclaims a key's state once it no
// longer matters (a fixed window that has ended, a sliding window whose
// previous window no longer overlaps), both while serving writes and through
// [Store.Sweep].
//
// Windows are aligned to the Unix epoch: the window holding instant t
// starts at t - t%Period. All instants are Unix nanoseconds. No input makes
// Decide's arithmetic overflow; its comment gives the rules at the edges (a
// huge quantity, a clock stepping back, the end of the clock), each chosen
// to keep the limit strict.
package window

import (
	"errors"
	"math"
	"math/bits"

	"github.com/sluicehq/sluice/gcra"
)

// Algorithm selects how a window limit counts.
type Algorithm uint8

const (
	// Sliding is the sliding-window counter: the previous window's count,
	// weighted by the part of it within the last Period, plus the current
	// window's count.
	Sliding Algorithm = iota
	// Fixed is the fixed window: a count per aligned window, reset at each
	// window boundary (so up to twice Count can pass around a boundary).
	Fixed
)

// String is the algorithm's name as commands and policy files spell it.
func (a Algorithm) String() string {
	if a == Fixed {
		return "fixed"
	}
	return "sliding"
}

// ParseAlgorithm reads "fixed" or "sliding" (case-insensitive), also as
// "fixed-window" and "sliding-window".
func ParseAlgorithm(b []byte) (Algorithm, error) {
	switch string(lower(b)) {
	case "fixed", "fixed-window":
		return Fixed, nil
	case "sliding", "sliding-window":
		return Sliding, nil
	}
	return 0, ErrAlgorithm
}

func lower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// ErrAlgorithm is the reply for an unknown algorithm name.
var ErrAlgorithm = errors.New("unknown algorithm: must be fixed or sliding")

// Bounds that keep every instant and count within int64.
const (
	maxCount  = 1 << 61
	maxPeriod = 1 << 60 // ns, about 36 years
)

// Limit is a validated window limit: at most Count requests per Period.
// Build one with [NewLimit].
type Limit struct {
	count  int64
	period int64 // ns
}

// NewLimit validates count (>= 1) and period (whole seconds, >= 1). Errors
// are the same values THROTTLE replies with.
func NewLimit(count, periodSeconds int64) (Limit, error) {
	switch {
	case count < 1:
		return Limit{}, gcra.ErrCount
	case periodSeconds < 1:
		return Limit{}, gcra.ErrPeriod
	case count > maxCount, periodSeconds > maxPeriod/1_000_000_000:
		return Limit{}, gcra.ErrOverflow
	}
	return Limit{count: count, period: periodSeconds * 1e9}, nil
}

// Count is the number of requests admitted per window.
func (l Limit) Count() int64 { return l.count }

// Period is the window length in nanoseconds.
func (l Limit) Period() int64 { return l.period }

// State is one key's counters: Start is the start of the window Curr counts
// (0 when there is none), Prev the count of the window before it.
type State struct {
	Start int64
	Curr  int64
	Prev  int64
}

// Expires is the instant after which st no longer affects any decision for
// limit l, or 0 when it never did. An instant past the end of the clock
// reads as 2^63-1: the state is kept, never dropped early.
func (st State) Expires(a Algorithm, l Limit) int64 {
	switch {
	case st.Curr > 0 && a == Sliding:
		return addSat(st.Start, 2*l.period)
	case st.Curr > 0 || (st.Prev > 0 && a == Sliding):
		return addSat(st.Start, l.period)
	}
	return 0
}

// Decide applies one request of quantity (negative refunds the current
// window, never below zero) at instant now to a key's state. It returns the
// state to store, unchanged when the request is refused.
//
// The reply's numbers: Limit is the count per window; Remaining what could
// still pass now; RetryAfter, when refused, the time until the same request
// would pass (-1 when it never can); ResetAfter the time until the key's
// counters no longer count against anything.
//
// No quantity, count, period or instant makes its arithmetic overflow; the
// edges are decided so that the limit stays strict:
//   - A quantity larger than the room left is refused however large it is
//     (up to 2^63-1), with RetryAfter -1 when it exceeds Count. A refund
//     (down to -2^63) floors the count at zero.
//   - An instant before 0 is decided as 0; durations count from it.
//   - An instant before the start of the state's window (the clock stepped
//     back) is decided as that start, in that window: the counters are kept,
//     and a sliding window's previous count weighs in full. Durations still
//     count from now, so the reply says how long this clock must wait.
//   - Every instant a decision computes lies within its window and, for a
//     sliding window, the next. Where those end after 2^63-1 ns (April 2262;
//     up to 73 years earlier with the longest period), the request is
//     refused, the state unchanged, with RetryAfter -1 and Remaining 0: a
//     window the clock cannot represent admits nothing. RetryAfter is -1
//     too when the request would first fit in such a window.
//   - Counts read from st are taken as at least 0. Decide stores none
//     below, so only a damaged state has them, and it gains no room.
//   - The zero Limit refuses every request.
func Decide(a Algorithm, st State, now int64, l Limit, quantity int64) (State, gcra.Result) {
	p := l.period
	r := gcra.Result{Limit: l.count, RetryAfter: -1}
	if p <= 0 {
		r.Limited = true
		return st, r
	}
	now = max(now, 0)
	ws, at := now-now%p, now // the window and the instant decided at
	if st.Start > now {
		ws, at = st.Start, st.Start
	}
	var cur, prev int64
	switch st.Start {
	case ws:
		cur, prev = max(st.Curr, 0), max(st.Prev, 0)
	case ws - p:
		prev = max(st.Curr, 0)
	}
	span := 2 * p // a decision's instants lie in [ws, ws+span]
	if a == Fixed {
		prev, span = 0, p
	}
	weighted := mulDivCeil(prev, p-(at-ws), p)
	used := addSat(cur, weighted)
	if ws > math.MaxInt64-span {
		r.Limited = true
		r.ResetAfter = resetAt(a, ws, p, cur, weighted, now) - now
		return st, r
	}
	if quantity > 0 && quantity > l.count-used {
		r.Limited = true
		r.Remaining = max(l.count-used, 0)
		r.ResetAfter = resetAt(a, ws, p, cur, weighted, now) - now
		if quantity <= l.count {
			// The retry instant is at most ws+span; its own window must
			// fit in the clock too.
			t := retryAt(a, ws, at-ws, p, cur, prev, l.count, quantity)
			if t-(t-ws)%p <= math.MaxInt64-span {
				r.RetryAfter = t - now
			}
		}
		return st, r
	}
	// Admitted: a positive quantity fits in count-used, so cur stays within
	// count; a refund only lowers a count that is not negative.
	cur = max(cur+quantity, 0)
	r.Remaining = max(l.count-addSat(cur, weighted), 0)
	r.ResetAfter = resetAt(a, ws, p, cur, weighted, now) - now
	return State{Start: ws, Curr: cur, Prev: prev}, r
}

// resetAt is when the key's counters stop counting (now when they do not):
// a fixed window's count when the window ends; a sliding window's current
// count weighs on the next window too, the previous one's only until this
// window ends. Past the end of the clock it reads 2^63-1.
func resetAt(a Algorithm, ws, p, cur, weighted, now int64) int64 {
	switch {
	case cur > 0 && a == Sliding:
		return addSat(ws, 2*p)
	case cur > 0 || weighted > 0:
		return addSat(ws, p)
	}
	return now
}

// retryAt is the first instant at which cur+weight(prev)+quantity fits in
// count, for a request with 0 < quantity <= count, cur >= 0 and prev >= 0
// (prev 0 for a fixed window): later in this window while the previous
// window's weight fades, or in the next window, where a fixed window starts
// from zero and a sliding one has this window's count fading. It is at most
// ws+2p, and at most ws+p for a fixed window.
func retryAt(a Algorithm, ws, elapsed, p, cur, prev, count, quantity int64) int64 {
	if room := count - quantity - cur; room >= 0 && prev > room {
		if e := p - mulDivFloor(room, p, prev); e < p {
			return ws + max(e, elapsed)
		}
	}
	// In the next window: cur becomes the fading count.
	room := count - quantity
	if a == Fixed || cur <= room {
		return ws + p
	}
	return ws + p + p - mulDivFloor(room, p, cur)
}

// addSat is a+b for b >= 0, or 2^63-1 when that overflows.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// mulDivCeil is ceil(a*b/c) for 0 <= a, 0 <= b <= c, 0 < c, in 128 bits.
func mulDivCeil(a, b, c int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, rem := bits.Div64(hi, lo, uint64(c))
	if rem != 0 {
		q++
	}
	return int64(q)
}

// mulDivFloor is floor(a*b/c) in 128 bits, for 0 <= a < c and 0 <= b, or
// 0 <= a and 0 <= b <= c, so that the quotient fits in 63 bits.
func mulDivFloor(a, b, c int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}
