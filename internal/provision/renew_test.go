package provision

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

func TestRenewalDue(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cred := func(created, end time.Duration) integration.Credential {
		e := now.Add(end)
		return integration.Credential{ID: uuid.New(), CreateTime: now.Add(created), EndTime: &e}
	}
	for _, tc := range []struct {
		name      string
		c         integration.Credential
		threshold time.Duration
		jitter    time.Duration
		want      bool
	}{
		{"far from expiry", cred(-30*day, 300*day), 30 * day, 0, false},
		{"within threshold", cred(-700*day, 29*day), 30 * day, 0, true},
		{"expired", cred(-700*day, -day), 30 * day, 0, true},
		{"just outside", cred(-700*day, 30*day+time.Minute), 30 * day, 0, false},
		{"unknown expiry", integration.Credential{ID: uuid.New(), CreateTime: now}, 30 * day, 0, false},
		// 60-day secrets with a 90-day threshold: due at half their life,
		// not at once (a rotation loop).
		{"short lifetime, new", cred(0, 60*day), 90 * day, 0, false},
		{"short lifetime, past half", cred(-31*day, 29*day), 90 * day, 0, true},
		// The jitter only ever delays, by at most a quarter of the threshold.
		{"jitter never below threshold-quarter", cred(-700*day, 22*day), 30 * day, 365 * day, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := renewalDue(now, tc.c, tc.threshold, tc.jitter); got != tc.want {
				t.Fatalf("renewalDue = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJitterSpreads(t *testing.T) {
	window := 24 * time.Hour
	hours := map[time.Duration]int{}
	for range 1000 {
		j := jitterFor(uuid.New(), window)
		if j < 0 || j >= window {
			t.Fatalf("jitter %s outside [0, %s)", j, window)
		}
		hours[j.Truncate(time.Hour)]++
	}
	// 1,000 credentials made together: spread over every hour of the day,
	// none with more than a tenth of them.
	if len(hours) != 24 {
		t.Fatalf("jitter hit %d hours of 24", len(hours))
	}
	for h, n := range hours {
		if n > 100 {
			t.Fatalf("%d of 1000 renewals in hour %s", n, h)
		}
	}
	id := uuid.New()
	first := jitterFor(id, window)
	if again := jitterFor(id, window); again != first {
		t.Fatal("jitter not fixed per credential")
	}
}
