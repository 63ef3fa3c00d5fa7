package webhook

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr         string
		allowPrivate bool
		refused      bool
	}{
		{"169.254.169.254:80", true, true}, // cloud metadata
		{"[fe80::1]:443", true, true},
		{"0.0.0.0:443", true, true},
		{"224.0.0.1:443", true, true},
		{"100.100.100.200:80", true, true}, // Alibaba metadata (CGNAT range)
		{"168.63.129.16:80", true, true},   // Azure WireServer
		{"[::ffff:169.254.169.254]:80", true, true},
		{"127.0.0.1:8080", false, true},
		{"10.1.2.3:443", false, true},
		{"192.168.1.1:443", false, true},
		{"[fd00:ec2::254]:80", false, true}, // AWS IPv6 metadata (unique local)
		{"127.0.0.1:8080", true, false},
		{"10.1.2.3:443", true, false},
		{"203.0.113.7:443", false, false},
		{"[2001:db8::1]:443", false, false},
	} {
		if err := checkAddress(tc.addr, tc.allowPrivate); (err != nil) != tc.refused {
			t.Errorf("%s (allowPrivate %v): err %v, want refused=%v", tc.addr, tc.allowPrivate, err, tc.refused)
		}
	}
}

// TestRetryAtAgrees: Work (which records the next attempt time in the log)
// and NextRetry (which schedules it in River) compute the same time, on the
// published schedule with its jitter.
func TestRetryAtAgrees(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for attempt := 1; attempt <= 12; attempt++ {
		job := &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{ID: 42, Attempt: attempt, AttemptedAt: &at}}
		a, b := retryAt(job), (&Deliverer{}).NextRetry(job)
		base := Backoff(attempt, 0)
		if !a.Equal(b) || a.Before(at.Add(base)) || a.After(at.Add(base*11/10)) {
			t.Fatalf("attempt %d: Work %v, NextRetry %v; want equal within %v..+10%%", attempt, a, b, base)
		}
	}
}
