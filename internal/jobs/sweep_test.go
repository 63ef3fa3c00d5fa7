package jobs

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// A batch due now is inserted available (no ScheduledAt: River would insert
// it scheduled, for its leader's scheduler to release up to 5 s later); one
// spread by the jitter or held back by the tenant's Retry-After is
// scheduled then.
func TestBatchParamsScheduling(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	org := uuid.New()
	for _, tc := range []struct {
		name      string
		jitter    time.Duration
		drawn     time.Duration // what the random draw returns
		throttled time.Time
		want      time.Time // zero: available at once
	}{
		{name: "no jitter", want: time.Time{}},
		{name: "jitter drew zero", jitter: time.Minute, want: time.Time{}},
		{name: "jitter", jitter: time.Minute, drawn: 20 * time.Second, want: now.Add(20 * time.Second)},
		{name: "Retry-After past", throttled: now.Add(-time.Second), want: time.Time{}},
		{name: "Retry-After ahead", throttled: now.Add(30 * time.Second), want: now.Add(30 * time.Second)},
		{name: "Retry-After after the jitter's point", jitter: time.Minute, drawn: 10 * time.Second,
			throttled: now.Add(30 * time.Second), want: now.Add(30 * time.Second)},
		{name: "jitter's point after the Retry-After", jitter: time.Minute, drawn: 40 * time.Second,
			throttled: now.Add(30 * time.Second), want: now.Add(40 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := uuid.New()
			ps := batchParams([]TenantRef{{Org: org, Tenant: tenant, ThrottledUntil: tc.throttled}}, now, tc.jitter,
				func(within time.Duration) time.Duration {
					if within != tc.jitter {
						t.Fatalf("drawn within %v, want the jitter %v", within, tc.jitter)
					}
					return tc.drawn
				})
			if len(ps) != 1 || ps[0].Args != (BatchArgs{Org: org, Tenant: tenant}) {
				t.Fatalf("params %+v", ps)
			}
			switch {
			case tc.want.IsZero() && ps[0].InsertOpts != nil:
				t.Fatalf("insert options %+v, want none (available at once)", *ps[0].InsertOpts)
			case !tc.want.IsZero() && (ps[0].InsertOpts == nil || !ps[0].InsertOpts.ScheduledAt.Equal(tc.want)):
				t.Fatalf("insert options %+v, want scheduled at %v", ps[0].InsertOpts, tc.want)
			}
		})
	}
}
