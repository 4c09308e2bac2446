package lease

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const epoch = int64(1893456000000000000)
const ms = int64(1e6)

func TestTTL(t *testing.T) {
	for _, bad := range []int64{0, -1, MaxTTL + 1, -1 << 63} {
		_, err := TTL(bad)
		assert.ErrorIs(t, err, ErrTTL, "%d", bad)
	}
	ns, err := TTL(MaxTTL)
	require.NoError(t, err)
	assert.Equal(t, MaxTTL*ms, ns)
}

func TestAcquireReleaseRenew(t *testing.T) {
	var ls []Lease
	ls, r := Acquire(ls, epoch, 2, 1000*ms, 7)
	assert.Equal(t, Result{Acquired: true, ID: 7, InFlight: 1, Max: 2}, r)
	ls, r = Acquire(Live(ls, epoch+100*ms), epoch+100*ms, 2, 1000*ms, 8)
	assert.Equal(t, Result{Acquired: true, ID: 8, InFlight: 2, Max: 2, FreeAfter: 900 * ms}, r)
	ls, r = Acquire(ls, epoch+100*ms, 2, 1000*ms, 9)
	assert.Equal(t, Result{ID: -1, InFlight: 2, Max: 2, FreeAfter: 900 * ms}, r, "full")
	assert.True(t, Renew(ls, 7, epoch+100*ms, 5000*ms))
	assert.False(t, Renew(ls, 9, epoch+100*ms, 5000*ms), "never held")
	assert.Equal(t, epoch+5100*ms, Last(ls))
	ls = Live(ls, epoch+1100*ms)
	assert.Len(t, ls, 1, "lease 8 expired at its TTL")
	ls, ok := Release(ls, 7)
	assert.True(t, ok)
	_, ok = Release(ls, 7)
	assert.False(t, ok, "released twice")
}

// TestExpirySaturates: a lease taken near the end of the clock expires at
// its end instead of wrapping into the past.
func TestExpirySaturates(t *testing.T) {
	now := int64(1<<63 - 1 - ms)
	ls, r := Acquire(nil, now, 1, MaxTTL*ms, 1)
	require.True(t, r.Acquired)
	assert.Equal(t, int64(1<<63-1), ls[0].Expires)
	assert.Len(t, Live(ls, now), 1)
	require.True(t, Renew(ls, 1, now, MaxTTL*ms))
	assert.Equal(t, int64(1<<63-1), ls[0].Expires)
}

// TestRenewNeverShortens: a renewal at an instant before the clock stepped
// back keeps the later expiry.
func TestRenewNeverShortens(t *testing.T) {
	ls, _ := Acquire(nil, epoch, 1, 10_000*ms, 1)
	require.True(t, Renew(ls, 1, epoch-5000*ms, 1000*ms))
	assert.Equal(t, epoch+10_000*ms, ls[0].Expires)
}

func TestEncodeDecode(t *testing.T) {
	ls := []Lease{{ID: 1, Expires: epoch}, {ID: 1 << 40, Expires: 1<<63 - 1}}
	got, err := Decode(Encode(nil, ls))
	require.NoError(t, err)
	assert.Equal(t, ls, got)
	for _, bad := range [][]byte{nil, {1}, make([]byte, 17), make([]byte, 16), Encode(nil, []Lease{{ID: MaxID + 1}})} {
		_, err := Decode(bad)
		assert.ErrorIs(t, err, ErrEncoding)
	}
}

// seq is a rand.Source that replays fixed values.
type seq []uint64

func (s *seq) Uint64() uint64 {
	v := (*s)[0]
	*s = (*s)[1:]
	return v
}

// TestNewID: 62 random bits make an ID in 1..MaxID, both ends reachable;
// a draw that a live lease holds is drawn again.
func TestNewID(t *testing.T) {
	for _, c := range []struct {
		draw uint64
		want int64
	}{{0, 1}, {3, 1}, {4, 2}, {math.MaxUint64, MaxID}, {math.MaxUint64 - 3, MaxID}, {math.MaxUint64 - 4, MaxID - 1}} {
		s := seq{c.draw}
		assert.Equal(t, c.want, NewID(nil, &s), "draw %#x", c.draw)
	}
	s := seq{0, 4, 8}
	assert.Equal(t, int64(3), NewID([]Lease{{ID: 1}, {ID: 2}}, &s), "1 and 2 are held: drawn again")
	assert.Empty(t, s)
}
