package token

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/auth"
)

// TestCountsPerCaller: issuance counters are kept per API key and per
// workload identity (each OIDC subject and certificate identity its own,
// as each has its own rate limit), not one shared nil-key counter for
// every caller without a key.
func TestCountsPerCaller(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 30, 0, 0, time.UTC)
	s := testService(&now)
	org, tenant, in := uuid.New(), uuid.New(), uuid.New()
	key := uuid.New()
	callers := []auth.Principal{
		{Org: org, Key: key, Role: auth.RoleConsumer},
		{Org: org, Role: auth.RoleConsumer, Subject: "oidc:https://issuer.example#svc-a"},
		{Org: org, Role: auth.RoleConsumer, Subject: "oidc:https://issuer.example#svc-b"},
		{Org: org, Role: auth.RoleConsumer, Subject: "cert:spiffe://platform/tokens"},
		{ServiceAdmin: true, Role: auth.RoleAdmin},
	}
	for i, p := range callers {
		ctx := auth.WithPrincipal(context.Background(), p)
		for range i + 1 {
			s.count(ctx, org, tenant, in, "graph", 1, 0)
		}
	}
	if len(s.counts) != len(callers) {
		t.Fatalf("%d counters for %d callers: %v", len(s.counts), len(callers), s.counts)
	}
	for i, p := range callers {
		wantKey := p.Key
		found := false
		for _, c := range s.counts {
			if c.Key == wantKey && c.Subject == p.Subject {
				found = true
				if c.Issued != int64(i+1) {
					t.Errorf("%s: issued %d, want %d", p.Actor(), c.Issued, i+1)
				}
			}
		}
		if !found {
			t.Errorf("no counter for %s", p.Actor())
		}
	}
}
