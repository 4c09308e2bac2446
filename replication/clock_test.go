package replication

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/assert"
)

// TestClockOffsetWarning: a heartbeat from a primary whose clock is 100 ms
// ahead is reported as the offset and warned about once, until the clocks
// agree again.
func TestClockOffsetWarning(t *testing.T) {
	var logs bytes.Buffer
	b := NewBacklog(DefaultBacklogSize, DefaultBufferLimit)
	n := New(Config{Keys: keyspace.New(1, b), Backlog: b, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	f := newFollower(n, "127.0.0.1", 1)
	n.follower = f
	warnings := func() int { return strings.Count(logs.String(), "this node's clock is off the primary's") }

	f.observeClock(time.Now().Add(100 * time.Millisecond).UnixNano())
	st := n.Status()
	assert.True(t, st.ClockKnown)
	assert.InDelta(t, -100, st.ClockOffset.Milliseconds(), 20)
	f.observeClock(time.Now().Add(100 * time.Millisecond).UnixNano())
	assert.Equal(t, 1, warnings(), "once while it lasts")
	f.observeClock(time.Now().UnixNano())
	f.observeClock(time.Now().Add(-time.Second).UnixNano())
	assert.Equal(t, 2, warnings(), "again after the clocks agreed in between")
}

// TestLagFromHeartbeats: the lag is the newest heartbeat's age when it was
// applied, until the next heartbeat is overdue; then it grows with the
// time since that one was due. Nothing is known before a heartbeat.
func TestLagFromHeartbeats(t *testing.T) {
	b := NewBacklog(DefaultBacklogSize, DefaultBufferLimit)
	n := New(Config{Keys: keyspace.New(1, b), Backlog: b, PingPeriod: time.Second})
	f := newFollower(n, "127.0.0.1", 1)
	c := time.Unix(2000000000, 0)
	_, known := f.lag(c)
	assert.False(t, known)

	f.pingClock.Store(c.UnixNano())
	f.pingAt.Store(c.Add(3 * time.Millisecond).UnixNano())
	for _, tc := range []struct{ at, want time.Duration }{
		{3 * time.Millisecond, 3 * time.Millisecond},
		{500 * time.Millisecond, 3 * time.Millisecond},    // the next is not due yet
		{1002 * time.Millisecond, 3 * time.Millisecond},   // due 2 ms ago: less than the last one's age
		{1500 * time.Millisecond, 500 * time.Millisecond}, // overdue by 500 ms
		{4 * time.Second, 3 * time.Second},
	} {
		lag, known := f.lag(c.Add(tc.at))
		assert.True(t, known)
		assert.Equal(t, tc.want, lag, "at %v", tc.at)
	}
	// A replica clock behind the primary's by more than the age: not negative.
	f.pingAt.Store(c.Add(-10 * time.Millisecond).UnixNano())
	lag, _ := f.lag(c)
	assert.Zero(t, lag)
}
