package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

func TestStatusCarriesRetryInfo(t *testing.T) {
	err := apperr.New(apperr.ResourceExhausted, "slow down").WithReason("RATE_LIMITED").
		WithMetadata("scope", "key").WithRetryDelay(1500 * time.Millisecond)
	st := Status(err)
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if st.Code() != codes.ResourceExhausted || delay != 1500*time.Millisecond {
		t.Fatalf("status %v with retry delay %v", st, delay)
	}
	if st := Status(apperr.New(apperr.ResourceExhausted, "quota")); len(st.Details()) != 0 {
		t.Fatalf("no retry delay, yet details %v", st.Details())
	}
}

func TestRetryAfterHeader(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Millisecond: "1", 999 * time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 99500 * time.Millisecond: "100",
	} {
		w := httptest.NewRecorder()
		err := Status(apperr.New(apperr.ResourceExhausted, "slow down").WithRetryDelay(d)).Err()
		errorWithRetryAfter(context.Background(), runtime.NewServeMux(), &runtime.JSONPb{}, w, httptest.NewRequest("GET", "/v1/x", nil), err)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != want {
			t.Errorf("delay %v: %d, Retry-After %q; want 429, %s", d, w.Code, w.Header().Get("Retry-After"), want)
		}
	}
	w := httptest.NewRecorder()
	errorWithRetryAfter(context.Background(), runtime.NewServeMux(), &runtime.JSONPb{}, w, httptest.NewRequest("GET", "/v1/x", nil),
		Status(apperr.New(apperr.NotFound, "x not found")).Err())
	if w.Code != http.StatusNotFound || w.Header().Get("Retry-After") != "" {
		t.Errorf("NotFound: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}
