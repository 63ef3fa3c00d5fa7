// Package clock is the time automatic credential renewal judges by
// (internal/provision/renew.go): in every deployment the system clock. A
// test may shift it: with DZCONNECT_TEST_CLOCK_FILE (--test-clock-file)
// naming a file that holds a Go duration such as "840h", Now is the system
// time plus that duration, read from the file at each call, so a test
// moves a running server's clock by rewriting the file (as msftsim's
// Admin().AdvanceClock moves the simulator's). A missing or empty file is
// no shift. Unset, Now is time.Now.
//
// Only the renewal's decisions read it (which credential is due, when a
// failed renewal may be retried); leases, River schedules, overlaps and
// the checks keep the system clock, so a shifted clock cannot stall the
// machinery the test watches.
package clock

import (
	"os"
	"strings"
	"time"
)

// Clock tells the time.
type Clock struct{ file string }

// System is the system clock.
func System() Clock { return Clock{} }

// FromFile is the system clock shifted by the duration in path (System
// when path is empty).
func FromFile(path string) Clock { return Clock{file: path} }

// Now returns the current time, shifted when the clock has a file.
func (c Clock) Now() time.Time {
	now := time.Now()
	if c.file == "" {
		return now
	}
	return now.Add(c.Offset())
}

// Offset is the shift read from the file (0 when there is none or it does
// not parse).
func (c Clock) Offset() time.Duration {
	if c.file == "" {
		return 0
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return d
}
