// Package clock is the simulator's controllable clock. Credential expiry,
// token lifetimes and replication-lag durations are measured on it, so tests
// advance time instead of sleeping.
package clock

import (
	"sync/atomic"
	"time"
)

// Clock is either wall time plus an offset (the default) or a frozen instant
// that moves only when told to. It is safe for concurrent use.
type Clock struct {
	frozen atomic.Bool
	at     atomic.Int64 // frozen instant, unix nanoseconds
	offset atomic.Int64 // added to wall time when not frozen
}

// NewWall returns a clock that follows wall time until advanced.
func NewWall() *Clock { return &Clock{} }

// NewFrozen returns a clock stopped at t; only Advance and Set move it.
func NewFrozen(t time.Time) *Clock {
	c := &Clock{}
	c.frozen.Store(true)
	c.at.Store(t.UnixNano())
	return c
}

// Now returns the simulator's current time (UTC).
func (c *Clock) Now() time.Time {
	if c.frozen.Load() {
		return time.Unix(0, c.at.Load()).UTC()
	}
	return time.Now().Add(time.Duration(c.offset.Load())).UTC()
}

// Advance moves the clock forward by d (d may be negative).
func (c *Clock) Advance(d time.Duration) time.Time {
	if c.frozen.Load() {
		c.at.Add(int64(d))
	} else {
		c.offset.Add(int64(d))
	}
	return c.Now()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	if c.frozen.Load() {
		c.at.Store(t.UnixNano())
		return
	}
	c.offset.Store(int64(time.Until(t)))
}

// Frozen reports whether the clock only moves when advanced.
func (c *Clock) Frozen() bool { return c.frozen.Load() }
