package gcra

import (
	"errors"
	"math"
)

// Errors returned by [NewLimit] and [Decide]. Package commands words them
// as Redis error replies.
var (
	ErrNegativeBurst = errors.New("invalid max_burst: must be >= 0")
	ErrCount         = errors.New("invalid count: must be >= 1")
	ErrPeriod        = errors.New("invalid period: must be >= 1 second")
	ErrZeroRate      = errors.New("zero rates are not supported")
	ErrOverflow      = errors.New("limit arithmetic overflows 64-bit nanoseconds")
)

// Limit is a validated rate: at most Burst+1 requests at once, refilled at
// Count requests per Period. Build one with [NewLimit]; the zero Limit is not
// usable.
type Limit struct {
	limit    int64 // max_burst + 1
	interval int64 // emission interval T in nanoseconds
	tau      int64 // delay variation tolerance T*limit in nanoseconds
}

// NewLimit validates max_burst, count and period (whole seconds) and
// precomputes the emission interval and tolerance.
func NewLimit(maxBurst, count, periodSeconds int64) (Limit, error) {
	switch {
	case maxBurst < 0:
		return Limit{}, ErrNegativeBurst
	case count < 1:
		return Limit{}, ErrCount
	case periodSeconds < 1:
		return Limit{}, ErrPeriod
	case maxBurst == math.MaxInt64, periodSeconds > math.MaxInt64/int64(1e9):
		return Limit{}, ErrOverflow
	}
	t := periodSeconds * 1e9 / count
	if t == 0 {
		return Limit{}, ErrZeroRate
	}
	lim := maxBurst + 1
	tau, ok := mul(t, lim)
	if !ok {
		return Limit{}, ErrOverflow
	}
	return Limit{limit: lim, interval: t, tau: tau}, nil
}

// Max is the number of requests the limit admits at once (max_burst + 1).
func (l Limit) Max() int64 { return l.limit }

// Interval is the emission interval in nanoseconds.
func (l Limit) Interval() int64 { return l.interval }

// Tolerance is the delay variation tolerance in nanoseconds: how far ahead
// of now a key's TAT may run before requests are refused.
func (l Limit) Tolerance() int64 { return l.tau }

// Result is one decision. Durations are nanoseconds; RetryAfter is -1 when
// the request was allowed or can never fit. Use [Seconds] to round them as
// redis-cell does.
type Result struct {
	Limited    bool
	Limit      int64
	Remaining  int64
	RetryAfter int64
	ResetAfter int64
}

// Decide applies one GCRA request of quantity (negative refunds) at instant
// now to a key whose stored TAT is tat (0 or any instant not after now when
// there is none). It returns the TAT to store: storing is needed only when
// the returned value differs from tat, and a TAT not after now means the key
// can be dropped. Decide never reads the clock and never allocates.
func Decide(tat, now int64, l Limit, quantity int64) (newTAT int64, r Result, err error) {
	inc, ok := mul(l.interval, quantity)
	if !ok {
		return tat, Result{}, ErrOverflow
	}
	if tat < now {
		tat = now
	}
	newTAT, ok = add(tat, inc)
	if !ok {
		return tat, Result{}, ErrOverflow
	}
	if newTAT < now {
		newTAT = now // a refund never takes capacity past full
	}
	allowAt := newTAT - l.tau // both non-negative: cannot overflow
	r.Limit = l.limit
	var ttl int64
	if now < allowAt {
		r.Limited = true
		ttl = tat - now
		r.RetryAfter = allowAt - now
		if inc > l.tau {
			r.RetryAfter = -1 // can never fit
		}
		newTAT = tat
	} else {
		ttl = newTAT - now
		r.RetryAfter = -1
	}
	r.ResetAfter = ttl
	r.Remaining = min(max((l.tau-ttl)/l.interval, 0), l.limit)
	return newTAT, r, nil
}

// Seconds rounds a duration in nanoseconds to whole seconds the redis-cell
// v0.5.0 way: truncate toward zero, then add one when the truncated part
// holds at least one whole millisecond. Negative values (-1) pass through.
func Seconds(ns int64) int64 {
	if ns < 0 {
		return ns
	}
	s := ns / 1e9
	if (ns%1e9)/1e6 >= 1 {
		s++
	}
	return s
}

func mul(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	c := a * b
	if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, false
	}
	return c, true
}

func add(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) != (b > 0) {
		return 0, false
	}
	return c, true
}
