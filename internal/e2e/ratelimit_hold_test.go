package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestRateLimitHold: a caller that keeps calling while refused (more
// refusals within a second than its burst, at least 20) gets its
// refusals answered after --rate-limit-hold; the held calls take the
// flooding client's own stream slots and HTTP requests, not the REST
// gateway's shared connection, so another organization's gRPC and REST
// calls are answered while they are held.
func TestRateLimitHold(t *testing.T) {
	t.Parallel()
	const hold = 4 * time.Second
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--rate-limit-key-rps=0.01", "--rate-limit-key-burst=1",
		"--rate-limit-org-rps=0", "--rate-limit-hold=" + hold.String()}})
	a, b := s.NewOrg(t, "Flooder"), s.NewOrg(t, "Bystander")
	// A client of its own each, as two programs would have.
	aClient, bClient := v1.NewOrganizationServiceClient(s.Dial(t)), v1.NewOrganizationServiceClient(s.Dial(t))
	authed := func(key string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	}
	aCtx, bCtx := authed(a.Viewer), authed(b.Viewer)
	get := func(ctx context.Context, c v1.OrganizationServiceClient, org stack.Org) error {
		_, err := c.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: org.Name})
		return err
	}

	// A spends its burst of 1, then is refused at once until it has been
	// refused more than 20 times within a second; then its refusals are
	// held.
	if err := get(aCtx, aClient, a); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("200 refusals in a row, none held")
		}
		start := time.Now()
		_, md := limitRefusal(t, get(aCtx, aClient, a), "RATE_LIMITED", "key")
		if md["held"] != "" {
			took = time.Since(start)
			held, err := time.ParseDuration(md["held"])
			if err != nil || held < hold/2 || held >= hold*3/2 || i < 20 {
				t.Fatalf("refusal %d held %q, want %v to %v after the 20th", i+1, md["held"], hold/2, hold*3/2)
			}
			if took < held {
				t.Fatalf("held refusal answered after %v, before its %v hold", took, held)
			}
			break
		}
	}

	// A floods: 150 REST calls and 120 gRPC calls at once (its connection
	// carries at most 100 streams; the rest wait in its client).
	heldBefore := metricValue(t, s, "dzconnect_rate_limit_held_total")
	var (
		aDone atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		bad   []string
	)
	fail := func(f string) {
		mu.Lock()
		bad = append(bad, f)
		mu.Unlock()
	}
	restGet := func(key, path string) (int, string, http.Header, error) {
		req, err := http.NewRequest("GET", s.HTTPURL+path, nil)
		if err != nil {
			return 0, "", nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header, err
	}
	for range 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, hdr, err := restGet(a.Viewer, "/v1/"+a.Name)
			aDone.Add(1)
			if err != nil || code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(body, `"held"`) {
				fail("REST: " + http.StatusText(code) + " " + body)
			}
		}()
	}
	for range 120 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := get(aCtx, aClient, a)
			aDone.Add(1)
			if status.Code(err) != codes.ResourceExhausted {
				fail("gRPC: " + status.Convert(err).String())
			}
		}()
	}
	// Until the server holds 150 + 100 of them.
	deadline := time.Now().Add(hold / 4)
	for metricValue(t, s, "dzconnect_rate_limit_held_total")-heldBefore < 250 {
		if time.Now().After(deadline) || aDone.Load() > 0 {
			t.Fatalf("held %v of A's calls, %d answered", metricValue(t, s, "dzconnect_rate_limit_held_total")-heldBefore, aDone.Load())
		}
		time.Sleep(20 * time.Millisecond) // polling the metric for a condition, not a stand-in for it
	}

	// B is answered over gRPC and REST while every one of A's calls is
	// held (each for at least half the hold: 2 s).
	if err := get(bCtx, bClient, b); err != nil {
		t.Fatalf("B over gRPC while A's refusals are held: %v", err)
	}
	if code, body, _, err := restGet(b.Operator, "/v1/"+b.Name); err != nil || code != http.StatusOK {
		t.Fatalf("B over REST while A's refusals are held: %d %s %v", code, body, err)
	}
	if n := aDone.Load(); n != 0 {
		t.Fatalf("%d of A's held calls were answered before B's calls returned (holds of %v to %v)", n, hold/2, hold*3/2)
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d of A's calls not answered as held refusals, e.g. %s", len(bad), bad[0])
	}
}
