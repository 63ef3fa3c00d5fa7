package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		base    time.Duration
	}{{1, 15 * time.Second}, {2, 30 * time.Second}, {3, time.Minute}, {8, 32 * time.Minute}, {9, time.Hour}, {30, time.Hour}} {
		for range 20 {
			if d := Backoff(tc.attempt); d < tc.base || d > tc.base+tc.base/5 {
				t.Fatalf("Backoff(%d) = %v, want %v + up to 20%%", tc.attempt, d, tc.base)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	plain := errors.New("boom")
	for _, tc := range []struct {
		name   string
		err    error
		nilErr bool
		cancel bool
	}{
		{"nil", nil, true, false},
		{"not found: done", apperr.NotFoundf("x"), true, false},
		{"unavailable: retried", apperr.New(apperr.Unavailable, "vault down"), false, false},
		{"unclassified: retried", plain, false, false},
		{"invalid: cancelled", apperr.Invalid("path", "bad"), false, true},
		{"failed precondition: cancelled", apperr.New(apperr.FailedPrecondition, "no"), false, true},
		{"context canceled: retried", context.Canceled, false, false},
	} {
		got := Classify(tc.err)
		if (got == nil) != tc.nilErr {
			t.Errorf("%s: Classify = %v", tc.name, got)
			continue
		}
		var cancel *river.JobCancelError
		if errors.As(got, &cancel) != tc.cancel {
			t.Errorf("%s: cancelled = %v, want %v", tc.name, !tc.cancel, tc.cancel)
		}
	}
}
