package commands

import (
	"errors"
	"math"

	"github.com/sluicehq/sluice/gcra"
)

// Argument errors; errorReply words them for the client.
var (
	errArgNotInteger = errors.New("not a base-10 64-bit integer")
	errArgCount      = errors.New("want max_burst, count, period and an optional quantity")
)

// parseInt parses a base-10 signed 64-bit integer the way THROTTLE accepts
// its arguments: an optional leading '+' or '-', then one or more digits
// (leading zeros allowed), nothing else. It does not allocate.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errArgNotInteger
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
		return 0, errArgNotInteger
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errArgNotInteger
		}
		if n > (math.MaxUint64-9)/10 {
			return 0, errArgNotInteger
		}
		n = n*10 + uint64(c-'0')
		if n > 1<<63 {
			return 0, errArgNotInteger
		}
	}
	if neg {
		return -int64(n), nil // n == 1<<63 wraps to MinInt64, as intended
	}
	if n > math.MaxInt64 {
		return 0, errArgNotInteger
	}
	return int64(n), nil
}

// parseInts parses every argument as an integer.
func parseInts(args [][]byte) ([]int64, error) {
	out := make([]int64, len(args))
	for i, a := range args {
		n, err := parseInt(a)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// parseThrottle parses THROTTLE's arguments after the key: max_burst, count,
// period and an optional quantity (default 1).
func parseThrottle(args [][]byte) (gcra.Limit, int64, error) {
	if len(args) != 3 && len(args) != 4 {
		return gcra.Limit{}, 0, errArgCount
	}
	var v [4]int64
	v[3] = 1
	for i, a := range args {
		n, err := parseInt(a)
		if err != nil {
			return gcra.Limit{}, 0, err
		}
		v[i] = n
	}
	l, err := gcra.NewLimit(v[0], v[1], v[2])
	if err != nil {
		return gcra.Limit{}, 0, err
	}
	return l, v[3], nil
}
