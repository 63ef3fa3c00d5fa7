package e2e

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestQuotas (issue 11 items 4 and 12e): an organization holds at most
// --quota-* tenants, integrations, API keys and outstanding consent links,
// across concurrent creates (counted under a lock, never overshooting);
// over the quota a create is RESOURCE_EXHAUSTED (QUOTA_EXCEEDED, the
// resource and its limit in the ErrorInfo) and writes nothing; a replay of
// a create that succeeded is not refused; freeing one admits one; another
// organization is not affected.
func TestQuotas(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--quota-tenants=2", "--quota-integrations=1", "--quota-api-keys=4"}})
	org := s.NewOrg(t, "Quota")
	other := s.NewOrg(t, "Other")
	c := s.Clients()
	overQuota := func(err error, resource string) {
		t.Helper()
		st := wantCode(t, err, codes.ResourceExhausted)
		if errorReason(err) != "QUOTA_EXCEEDED" {
			t.Fatalf("over the %s quota: reason %q (%q)", resource, errorReason(err), st.Message())
		}
		if md := errorMetadata(err); md["resource"] != resource || md["limit"] == "" {
			t.Fatalf("over the %s quota: metadata %v", resource, md)
		}
	}

	// Tenants: five at once against a quota of two.
	before := snapshot(t, s)
	reqs := make([]*v1.CreateTenantRequest, 5)
	for i := range reqs {
		reqs[i] = &v1.CreateTenantRequest{Parent: org.Name, RequestId: uuid.NewString(),
			Tenant: &v1.Tenant{EntraTenantId: uuid.NewString(), Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "T"}}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[int]*v1.Tenant{}
		refused []error
	)
	for i, req := range reqs {
		wg.Go(func() {
			resp, err := c.Tenants.CreateTenant(org.OperatorCtx, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused = append(refused, err)
				return
			}
			created[i] = resp.GetTenant()
		})
	}
	wg.Wait()
	if len(created) != 2 || len(refused) != 3 {
		t.Fatalf("five creates against a quota of two: %d created, %d refused (%v)", len(created), len(refused), refused)
	}
	for _, err := range refused {
		overQuota(err, "tenants")
	}
	after := snapshot(t, s)
	if after["tenants"] != before["tenants"]+2 || after["audit_events"] != before["audit_events"]+2 {
		t.Fatalf("refused creates wrote:\nbefore %v\nafter  %v", before, after)
	}
	// At the quota, a replay of a create that succeeded still returns its
	// tenant.
	var names []string
	for i, tn := range created {
		resp, err := c.Tenants.CreateTenant(org.OperatorCtx, reqs[i])
		if err != nil || resp.GetTenant().GetName() != tn.GetName() {
			t.Fatalf("replay at the quota: %v, %v; want %s", resp, err, tn.GetName())
		}
		names = append(names, tn.GetName())
	}
	// Another organization has its own quota.
	newTenant(t, s, other.OperatorCtx, other.Name)
	// Freeing one admits one.
	if _, err := c.Tenants.DeleteTenant(org.OperatorCtx, &v1.DeleteTenantRequest{Name: names[0]}); err != nil {
		t.Fatal(err)
	}
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)

	// Integrations: one.
	newIntegration(t, s, org.OperatorCtx, tenant.GetName(), "quota~Secret.Value_1234567890abcdefghijk")
	_, err := c.Integrations.CreateIntegration(org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: names[1],
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}},
		ClientSecret: "quota~Secret.Value_1234567890abcdefghijk"})
	overQuota(err, "integrations")

	// API keys: up to four, the organization's own included.
	keys, err := c.Keys.ListApiKeys(org.AdminCtx, &v1.ListApiKeysRequest{Parent: org.Name})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 - len(keys.GetApiKeys()) {
		if _, err := c.Keys.CreateApiKey(org.AdminCtx, &v1.CreateApiKeyRequest{Parent: org.Name, ApiKey: &v1.ApiKey{DisplayName: "k", Role: v1.Role_ROLE_OPERATOR}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Keys.CreateApiKey(org.AdminCtx, &v1.CreateApiKeyRequest{Parent: org.Name, ApiKey: &v1.ApiKey{DisplayName: "k", Role: v1.Role_ROLE_OPERATOR}})
	overQuota(err, "api-keys")
}

// errorMetadata is the ErrorInfo metadata of a status error.
func errorMetadata(err error) map[string]string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ei, ok := d.(interface{ GetMetadata() map[string]string }); ok {
			return ei.GetMetadata()
		}
	}
	return nil
}
