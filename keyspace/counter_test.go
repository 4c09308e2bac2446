package keyspace

import (
	"testing"

	"github.com/sluicehq/sluice/counter"
	"github.com/sluicehq/sluice/slidinglog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCounterAndLogAreState: a counter and a sliding log are state of their
// key like any other kind: Len, Expires, Delete, the sweep and the journal
// see them.
func TestCounterAndLogAreState(t *testing.T) {
	j := &recorder{}
	ks := New(4, j)
	k := []byte("k")
	st, err := ks.IncrBy(k, epoch, 3, 60*sec, false)
	require.NoError(t, err)
	assert.Equal(t, counter.State{Value: 3, Expires: epoch + 60*sec}, st)
	l, err := slidinglog.NewLimit(2, 90_000)
	require.NoError(t, err)
	assert.False(t, ks.LogAcquire(k, epoch, l, 1).Limited)
	assert.Equal(t, 1, ks.Len())
	stats := ks.Stats()
	assert.Equal(t, []int{1, 1, 1}, []int{stats.Keys, stats.Counters, stats.Logs})
	at, ok := ks.Expires(k, epoch)
	assert.True(t, ok)
	assert.Equal(t, epoch+90*sec, at, "the log outlasts the counter")

	assert.Equal(t, counter.State{Value: 3, Expires: epoch + 60*sec}, ks.Counter(k, epoch+59*sec))
	assert.Equal(t, counter.State{}, ks.Counter(k, epoch+60*sec), "expired")
	assert.Equal(t, 1, ks.Sweep(epoch+60*sec, 100), "the counter goes, the log stays")
	assert.Equal(t, 1, ks.Len())
	assert.Equal(t, slidinglog.Window{Count: 1, NextLeaves: 30 * sec, AllLeave: 30 * sec}, ks.LogWindow(k, epoch+60*sec, l.Period()))

	j.changes = nil
	assert.True(t, ks.Delete(k, epoch+60*sec))
	assert.Equal(t, []string{"delete log k"}, j.changes)
	assert.Zero(t, ks.Len())
}

// TestCounterOverflowChangesNothing: an increment past int64 is an error
// and leaves the counter as it was, journalling nothing.
func TestCounterOverflowChangesNothing(t *testing.T) {
	j := &recorder{}
	ks := New(1, j)
	_, err := ks.IncrBy([]byte("c"), epoch, 1<<63-1, sec, false)
	require.NoError(t, err)
	j.changes = nil
	st, err := ks.IncrBy([]byte("c"), epoch, 1, sec, true)
	assert.ErrorIs(t, err, counter.ErrOverflow)
	assert.Equal(t, counter.State{Value: 1<<63 - 1, Expires: epoch + sec}, st)
	assert.Empty(t, j.changes)
}

// TestLogRefusalsJournalNothing: only admissions change a sliding log;
// refusals and peeks leave it (and the stream) as they were.
func TestLogRefusalsJournalNothing(t *testing.T) {
	j := &recorder{}
	ks := New(1, j)
	l, _ := slidinglog.NewLimit(1, 1000)
	assert.False(t, ks.LogAcquire([]byte("s"), epoch, l, 1).Limited)
	assert.Len(t, j.changes, 1)
	assert.True(t, ks.LogAcquire([]byte("s"), epoch+500*ms, l, 1).Limited)
	assert.False(t, ks.LogAcquire([]byte("s"), epoch+500*ms, l, 0).Limited)
	assert.Len(t, j.changes, 1)
	r := ks.LogAcquire([]byte("s"), epoch+sec, l, 1)
	assert.Equal(t, slidinglog.Result{Limit: 1, RetryAfter: -1, ResetAfter: sec}, r)
	assert.Len(t, j.changes, 2)
	assert.Equal(t, slidinglog.Window{Count: 1, NextLeaves: sec, AllLeave: sec}, ks.LogWindow([]byte("s"), epoch+sec, l.Period()))
}
