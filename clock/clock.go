// Package clock owns Sluice's notion of now: the system clock, anchored to
// wall time once and advanced by the monotonic clock, and the settable clock
// that DEBUG CLOCK SET freezes in tests. Every request reads it once and
// passes the instant down; nothing below package commands reads a clock.
package clock

import (
	"sync/atomic"
	"time"
)

// Source tells the current instant in Unix nanoseconds.
type Source interface {
	Now() int64
}

// System is wall-clock time read once at construction and advanced by
// the monotonic clock afterwards, so a wall-clock step while the process runs
// (NTP, an operator's date command) never disturbs decisions, while stored
// TATs still mean Unix time across restarts.
type System struct {
	base  int64
	start time.Time
}

// NewSystem returns a System clock anchored at the current wall time.
func NewSystem() *System {
	now := time.Now()
	return &System{base: now.UnixNano(), start: now}
}

// Now returns the anchored wall time plus the monotonic time elapsed since.
func (c *System) Now() int64 { return c.base + c.elapsed() }

// elapsed is the monotonic time since the clock was made: one clock read.
func (c *System) elapsed() int64 { return int64(time.Since(c.start)) }

// Settable follows an underlying clock until it is frozen at a chosen
// instant (DEBUG CLOCK SET), and follows it again after Release. It is safe
// for concurrent use.
type Settable struct {
	base   Source
	sys    *System   // base, when it is a System: Stamp then reads the clock once
	start  time.Time // Stamp's monotonic origin for other bases
	frozen atomic.Bool
	at     atomic.Int64
}

// NewSettable returns a clock that follows base until frozen.
func NewSettable(base Source) *Settable {
	sys, _ := base.(*System)
	return &Settable{base: base, sys: sys, start: time.Now()}
}

// Stamp returns Now and, for measuring durations, a monotonic reading in
// nanoseconds that freezing never stops. Over a System clock both come
// from one read of the clock, so a caller that needs the instant and a
// duration's end pays for one read, not two.
func (c *Settable) Stamp() (now, mono int64) {
	if c.sys != nil {
		mono = c.sys.elapsed()
		now = c.sys.base + mono
	} else {
		mono = int64(time.Since(c.start))
		now = c.base.Now()
	}
	if c.frozen.Load() {
		now = c.at.Load()
	}
	return now, mono
}

// Now returns the frozen instant, or the underlying clock's.
func (c *Settable) Now() int64 {
	if c.frozen.Load() {
		return c.at.Load()
	}
	return c.base.Now()
}

// Set freezes the clock at ns.
func (c *Settable) Set(ns int64) {
	c.at.Store(ns)
	c.frozen.Store(true)
}

// Release returns the clock to the underlying one.
func (c *Settable) Release() { c.frozen.Store(false) }

// Frozen reports whether the clock is frozen.
func (c *Settable) Frozen() bool { return c.frozen.Load() }
