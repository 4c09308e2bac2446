package gcra

import (
	"errors"
	"math"
)

// ErrNotInteger is Redis's reply for an argument that is not a base-10 64-bit
// integer.
var ErrNotInteger = errors.New("ERR value is not an integer or out of range")

// ParseInt parses a base-10 signed 64-bit integer the way THROTTLE accepts
// its arguments: an optional leading '+' or '-', then one or more digits
// (leading zeros allowed), nothing else. It does not allocate.
func ParseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, ErrNotInteger
	}
	neg := false
	switch b[0] {
	case '+':
		b = b[1:]
	case '-':
		neg = true
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, ErrNotInteger
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrNotInteger
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, ErrNotInteger
		}
		n = n*10 + uint64(c-'0')
		if n > 1<<63 {
			return 0, ErrNotInteger
		}
	}
	if neg {
		return -int64(n), nil // n == 1<<63 wraps to MinInt64, as intended
	}
	if n > math.MaxInt64 {
		return 0, ErrNotInteger
	}
	return int64(n), nil
}

// ParseThrottle parses THROTTLE's arguments after the key: max_burst, count,
// period and an optional quantity (default 1).
func ParseThrottle(args [][]byte) (Limit, int64, error) {
	if len(args) != 3 && len(args) != 4 {
		return Limit{}, 0, errors.New("ERR wrong number of arguments")
	}
	var v [4]int64
	v[3] = 1
	for i, a := range args {
		n, err := ParseInt(a)
		if err != nil {
			return Limit{}, 0, err
		}
		v[i] = n
	}
	l, err := NewLimit(v[0], v[1], v[2])
	if err != nil {
		return Limit{}, 0, err
	}
	return l, v[3], nil
}
