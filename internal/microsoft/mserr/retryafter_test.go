package mserr

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterTakesTheLongestAndServerDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"500"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"1"}, "X-Ms-Retry-After-Ms": {"2500"}}, 2500 * time.Millisecond},
		// A local clock 10 s ahead of Microsoft's must not shorten the wait.
		{http.Header{"Retry-After": {now.Add(-5 * time.Second).Format(http.TimeFormat)},
			"Date": {now.Add(-10 * time.Second).Format(http.TimeFormat)}}, 6 * time.Second},
		{http.Header{}, 0},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}
