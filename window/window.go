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
// starts at t - t%Period. All instants are Unix nanoseconds.
package window

import (
	"errors"
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
var ErrAlgorithm = errors.New("ERR unknown algorithm: must be fixed or sliding")

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
// limit l, or 0 when it never did.
func (st State) Expires(a Algorithm, l Limit) int64 {
	switch {
	case st.Curr > 0 && a == Sliding:
		return st.Start + 2*l.period
	case st.Curr > 0 || (st.Prev > 0 && a == Sliding):
		return st.Start + l.period
	}
	return 0
}

// Decide applies one request of quantity (negative refunds the current
// window, never below zero) at instant now (> 0) to a key's state. It
// returns the state to store, unchanged when the request is refused.
//
// The reply's numbers: Limit is the count per window; Remaining what could
// still pass now; RetryAfter, when refused, the time until the same request
// would pass (-1 when quantity exceeds the count: never); ResetAfter the
// time until the key's counters no longer count against anything.
func Decide(a Algorithm, st State, now int64, l Limit, quantity int64) (State, gcra.Result) {
	p := l.period
	ws := now - now%p
	var cur, prev int64
	switch st.Start {
	case ws:
		cur, prev = st.Curr, st.Prev
	case ws - p:
		prev = st.Curr
	}
	if a == Fixed {
		prev = 0
	}
	elapsed := now - ws
	weighted := mulDivCeil(prev, p-elapsed, p)
	r := gcra.Result{Limit: l.count, RetryAfter: -1}
	if quantity > 0 && cur+weighted+quantity > l.count {
		r.Limited = true
		r.Remaining = max(l.count-cur-weighted, 0)
		r.ResetAfter = resetAfter(a, ws, now, p, cur, weighted)
		if quantity <= l.count {
			r.RetryAfter = retryAt(a, ws, elapsed, p, cur, prev, l.count, quantity) - now
		}
		return st, r
	}
	cur = max(cur+quantity, 0)
	r.Remaining = max(l.count-cur-weighted, 0)
	r.ResetAfter = resetAfter(a, ws, now, p, cur, weighted)
	if a == Fixed {
		return State{Start: ws, Curr: cur}, r
	}
	return State{Start: ws, Curr: cur, Prev: prev}, r
}

// resetAfter is the time until the key's counters stop counting: a fixed
// window's count until the window ends; a sliding window's current count
// weighs on the next window too, the previous one's only until this window
// ends.
func resetAfter(a Algorithm, ws, now, p, cur, weighted int64) int64 {
	switch {
	case cur > 0 && a == Sliding:
		return ws + 2*p - now
	case cur > 0 || weighted > 0:
		return ws + p - now
	}
	return 0
}

// retryAt is the first instant at which cur+weight(prev)+quantity fits in
// count, for a request with 0 < quantity <= count: later in this window
// while the previous window's weight fades, or in the next window, where a
// fixed window starts from zero and a sliding one has this window's count
// fading.
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
