package commands

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/sluicehq/sluice/gcra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseInt(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"15", 15, true}, {"+5", 5, true}, {"-1", -1, true}, {"007", 7, true},
		{"-0", 0, true}, {"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false}, {"", 0, false}, {"+", 0, false}, {"-", 0, false},
		{"1.5", 0, false}, {"0x10", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"5x", 0, false},
		{"+-5", 0, false}, {"1_000", 0, false}, {"１", 0, false},
	} {
		got, err := parseInt([]byte(c.in))
		if c.ok {
			require.NoError(t, err, "%q", c.in)
			assert.Equal(t, c.want, got, "%q", c.in)
		} else {
			assert.ErrorIs(t, err, errArgNotInteger, "%q", c.in)
		}
	}
}

func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "+5", "-1", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "99999999999999999999", "", "1.5", "0x10", "007"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseInt(b)
		// Reference: digits with optional sign, value in range.
		ok := len(b) > 0
		s := b
		if ok && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		ok = ok && len(s) > 0
		for _, c := range s {
			ok = ok && c >= '0' && c <= '9'
		}
		if !ok {
			require.Error(t, err)
			return
		}
		if err == nil {
			// Round trip through the decimal form (ignoring '+' and leading zeros).
			neg := b[0] == '-'
			require.Equal(t, neg && got != 0 || got < 0, got < 0)
		}
	})
}
func FuzzThrottleArgs(f *testing.F) {
	f.Add([]byte("15"), []byte("30"), []byte("60"), []byte("1"))
	f.Add([]byte("-1"), []byte("1"), []byte("1"), []byte("1"))
	f.Add([]byte("0"), []byte("9223372036854775807"), []byte("9223372036"), []byte("-9223372036854775808"))
	f.Add([]byte("9223372036854775806"), []byte("1"), []byte("1"), []byte("0"))
	f.Fuzz(func(t *testing.T, a, b, c, d []byte) {
		l, q, err := parseThrottle([][]byte{a, b, c, d})
		if err != nil {
			requireKnownReply(t, err)
			return
		}
		_, r, err := gcra.Decide(0, epoch, l, q)
		if err != nil {
			requireKnownReply(t, err)
			return
		}
		require.LessOrEqual(t, r.Remaining, l.Max())
		require.GreaterOrEqual(t, r.Remaining, int64(0))
	})
}

func BenchmarkParseThrottle(b *testing.B) {
	b.ReportAllocs()
	args := [][]byte{[]byte("15"), []byte("30"), []byte("60"), []byte("1")}
	for i := 0; i < b.N; i++ {
		_, _, _ = parseThrottle(args)
	}
}

// requireKnownReply fails unless err has its own wording in errorReplies.
func requireKnownReply(t *testing.T, err error) {
	t.Helper()
	for _, e := range errorReplies {
		if errors.Is(err, e.err) {
			return
		}
	}
	t.Fatalf("error %q has no Redis wording in errorReplies", err)
}

// TestErrorReplies: the Go errors of argument parsing and of the packages
// below reach clients in Redis's shape, worded as before they were Go
// errors; an error without a wording still gets an ERR code.
func TestErrorReplies(t *testing.T) {
	_, err := parseInt([]byte("1.5"))
	assert.Equal(t, "ERR value is not an integer or out of range", errorReply(err))
	_, _, err = parseThrottle([][]byte{[]byte("1"), []byte("1")})
	assert.Equal(t, "ERR wrong number of arguments", errorReply(err))
	_, err = gcra.NewLimit(0, 2_000_000_000, 1)
	assert.Equal(t, "ERR zero rates are not supported", errorReply(err))
	assert.Equal(t, "ERR invalid max_burst: must be >= 0", errorReply(fmt.Errorf("limit 2: %w", gcra.ErrNegativeBurst)), "wrapped")
	assert.Equal(t, "ERR something else", errorReply(errors.New("something else")))
	for _, e := range errorReplies {
		assert.Regexp(t, `^ERR [^\r\n]+$`, e.reply)
	}
}
