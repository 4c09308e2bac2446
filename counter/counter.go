// Package counter owns the arithmetic of Sluice's expiring counters: a
// number that requests add to, which starts from zero and lasts a TTL from
// its first increment (or from every increment, "elastic"), as Redis's
// INCRBY followed by EXPIRE on a fresh key does. It is the fixed window of
// the Python limits library, express-rate-limit and go-chi/httprate: the
// window begins at the first hit and every hit, admitted or not, counts.
//
// Its functions are pure: they take a counter's state and the current
// instant (Unix nanoseconds) and return the state to store. They never read
// a clock and never lock; package keyspace stores each key's counter and
// calls them under the key's lock.
package counter

import (
	"encoding/binary"
	"errors"
)

// Errors for invalid arguments and results.
var (
	ErrTTL      = errors.New("invalid ttl: must be >= 1 millisecond and at most 2^40 ms")
	ErrOverflow = errors.New("increment or decrement would overflow")
)

// MaxTTL is the longest TTL, in milliseconds (about 35 years).
const MaxTTL = 1 << 40

// State is one counter: its value and the instant it stops mattering.
type State struct {
	Value   int64
	Expires int64
}

// TTL validates a TTL in milliseconds and returns it in nanoseconds.
func TTL(ms int64) (int64, error) {
	if ms < 1 || ms > MaxTTL {
		return 0, ErrTTL
	}
	return ms * 1e6, nil
}

// expiry is now+ttl, saturated at the largest instant.
func expiry(now, ttl int64) int64 {
	if now > 1<<63-1-ttl {
		return 1<<63 - 1
	}
	return now + ttl
}

// Live returns st as it stands at now: the zero State once it has expired.
func Live(st State, now int64) State {
	if st.Expires <= now {
		return State{}
	}
	return st
}

// Incr adds amount (negative: subtracts) to st, the counter as it stood
// (see Live), at now. A counter that was not live starts at zero and
// expires ttl nanoseconds from now; elastic moves the expiry to ttl from
// now on every call. A sum outside int64 is ErrOverflow and st is returned
// unchanged.
func Incr(st State, now, amount, ttl int64, elastic bool) (State, error) {
	next := Live(st, now)
	if next.Expires == 0 || elastic {
		next.Expires = expiry(now, ttl)
	}
	v := next.Value + amount
	if (amount > 0 && v < next.Value) || (amount < 0 && v > next.Value) {
		return st, ErrOverflow
	}
	next.Value = v
	return next, nil
}

// valueBytes is the size of an encoded counter (its expiry travels apart).
const valueBytes = 8

// ErrEncoding is returned by Decode for bytes Encode did not produce.
var ErrEncoding = errors.New("malformed counter encoding")

// Encode appends st's value, big-endian; the expiry is the caller's to keep.
func Encode(dst []byte, st State) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(st.Value))
}

// Decode reads what Encode wrote, with the expiry kept apart.
func Decode(b []byte, expires int64) (State, error) {
	if len(b) != valueBytes {
		return State{}, ErrEncoding
	}
	return State{Value: int64(binary.BigEndian.Uint64(b)), Expires: expires}, nil
}
