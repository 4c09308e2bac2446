package counter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	epoch = int64(1893456000000000000)
	sec   = int64(1e9)
)

// TestFixedFromFirstHit: the counter lasts its TTL from the first
// increment; later increments do not move it; once expired it starts over.
func TestFixedFromFirstHit(t *testing.T) {
	st, err := Incr(State{}, epoch, 1, 60*sec, false)
	require.NoError(t, err)
	assert.Equal(t, State{Value: 1, Expires: epoch + 60*sec}, st)
	st, _ = Incr(st, epoch+30*sec, 5, 60*sec, false)
	assert.Equal(t, State{Value: 6, Expires: epoch + 60*sec}, st)
	st, _ = Incr(st, epoch+60*sec, 1, 60*sec, false)
	assert.Equal(t, State{Value: 1, Expires: epoch + 120*sec}, st, "expired: starts over")
}

// TestElastic: every increment moves the expiry.
func TestElastic(t *testing.T) {
	st, _ := Incr(State{}, epoch, 1, 60*sec, true)
	st, _ = Incr(st, epoch+30*sec, 1, 60*sec, true)
	assert.Equal(t, State{Value: 2, Expires: epoch + 90*sec}, st)
}

func TestOverflow(t *testing.T) {
	st := State{Value: 1<<63 - 1, Expires: epoch + sec}
	got, err := Incr(st, epoch, 1, sec, true)
	assert.ErrorIs(t, err, ErrOverflow)
	assert.Equal(t, st, got, "unchanged")
	st = State{Value: -1 << 63, Expires: epoch + sec}
	_, err = Incr(st, epoch, -1, sec, false)
	assert.ErrorIs(t, err, ErrOverflow)
	got, err = Incr(st, epoch, 1<<63-1, sec, false)
	require.NoError(t, err)
	assert.Equal(t, int64(-1), got.Value)
}

func TestTTL(t *testing.T) {
	for _, bad := range []int64{0, -1, MaxTTL + 1} {
		_, err := TTL(bad)
		assert.ErrorIs(t, err, ErrTTL)
	}
	st, _ := Incr(State{}, 1<<63-10, 1, MaxTTL*1e6, false)
	assert.Equal(t, int64(1<<63-1), st.Expires, "saturates")
}

func TestEncoding(t *testing.T) {
	st := State{Value: -42, Expires: epoch}
	got, err := Decode(Encode(nil, st), epoch)
	require.NoError(t, err)
	assert.Equal(t, st, got)
	_, err = Decode([]byte{1, 2}, epoch)
	assert.ErrorIs(t, err, ErrEncoding)
}
