package verify

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

func TestOnDemandSlots(t *testing.T) {
	s := NewService(Config{}, Deps{})
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.LimitOnDemand(OnDemandLimits{Total: 3, PerOrg: 2})
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	busy := func(err error, scope string) {
		t.Helper()
		e, ok := apperr.From(err)
		if !ok || e.Kind != apperr.ResourceExhausted || e.Reason != ReasonChecksBusy || e.Metadata["scope"] != scope || e.RetryDelay < time.Second {
			t.Fatalf("want CHECKS_BUSY of scope %s with a retry delay, got %#v", scope, err)
		}
	}
	ra1, err := s.enterOnDemand(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.enterOnDemand(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, err = s.enterOnDemand(ctx, a)
	busy(err, "organization")
	if _, err := s.enterOnDemand(ctx, b); err != nil {
		t.Fatalf("another organization: %v", err)
	}
	_, err = s.enterOnDemand(ctx, b)
	busy(err, "replica")
	if st := s.OnDemandStats(); st.InFlight != 3 || st.RefusedOrganization != 1 || st.RefusedReplica != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Releasing twice gives back one slot.
	now = now.Add(10 * time.Second)
	ra1()
	ra1()
	if st := s.OnDemandStats(); st.InFlight != 2 {
		t.Fatalf("after one release: %d in flight, want 2", st.InFlight)
	}
	// A reserved slot is used by the checks run under its context.
	held, release, err := s.ReserveOnDemand(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.enterOnDemand(held, b); err != nil {
		t.Fatalf("inside a reservation: %v", err)
	} else {
		r()
	}
	if st := s.OnDemandStats(); st.InFlight != 3 {
		t.Fatalf("with the reservation: %d in flight, want 3", st.InFlight)
	}
	release()
	// The retry delay follows the checks' duration (10s moved the
	// average from 2s by an eighth of the difference: 3s).
	_, _ = s.enterOnDemand(ctx, a)
	_, err = s.enterOnDemand(ctx, a)
	if e, _ := apperr.From(err); e == nil || e.RetryDelay != 3*time.Second {
		t.Fatalf("retry delay after a 10s check: %v, want 3s", err)
	}
	// Without limits, nothing is counted.
	free := NewService(Config{}, Deps{})
	for range 100 {
		if _, err := free.enterOnDemand(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}
