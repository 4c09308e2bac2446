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
