package gcra

import (
	"sync/atomic"
	"time"
)

// Clock tells the current instant in Unix nanoseconds.
type Clock interface {
	Now() int64
}

// SystemClock is wall-clock time read once at construction and advanced by
// the monotonic clock afterwards, so a wall-clock step while the process runs
// (NTP, an operator's date command) never disturbs decisions, while stored
// TATs still mean Unix time across restarts.
type SystemClock struct {
	base  int64
	start time.Time
}

// NewSystemClock returns a SystemClock anchored at the current wall time.
func NewSystemClock() *SystemClock {
	now := time.Now()
	return &SystemClock{base: now.UnixNano(), start: now}
}

// Now returns the anchored wall time plus the monotonic time elapsed since.
func (c *SystemClock) Now() int64 { return c.base + int64(time.Since(c.start)) }

// SettableClock follows an underlying clock until it is frozen at a chosen
// instant (DEBUG CLOCK SET), and follows it again after Release. It is safe
// for concurrent use.
type SettableClock struct {
	base   Clock
	frozen atomic.Bool
	at     atomic.Int64
}

// NewSettableClock returns a clock that follows base until frozen.
func NewSettableClock(base Clock) *SettableClock { return &SettableClock{base: base} }

// Now returns the frozen instant, or the underlying clock's.
func (c *SettableClock) Now() int64 {
	if c.frozen.Load() {
		return c.at.Load()
	}
	return c.base.Now()
}

// Set freezes the clock at ns.
func (c *SettableClock) Set(ns int64) {
	c.at.Store(ns)
	c.frozen.Store(true)
}

// Release returns the clock to the underlying one.
func (c *SettableClock) Release() { c.frozen.Store(false) }

// Frozen reports whether the clock is frozen.
func (c *SettableClock) Frozen() bool { return c.frozen.Load() }
