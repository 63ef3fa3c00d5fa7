package e2e

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

func TestOrganizationLifecycle(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	ctx := s.Admin(t)

	req := &v1.CreateOrganizationRequest{Organization: &v1.Organization{DisplayName: "Acme MSSP"}, RequestId: uuid.NewString()}
	first, err := c.Orgs.CreateOrganization(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Orgs.CreateOrganization(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again, protocmp.Transform()); diff != "" {
		t.Fatalf("replay differs (-first +again):\n%s", diff)
	}
	if n := countRows(t, s, "organizations"); n != 1 {
		t.Fatalf("%d organizations after a replayed create, want 1", n)
	}
	req.Organization.DisplayName = "Other"
	wantViolation(t, errOf(c.Orgs.CreateOrganization(ctx, req)), "request_id")

	name := first.GetOrganization().GetName()
	got, err := c.Orgs.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first.GetOrganization(), got.GetOrganization(), protocmp.Transform()); diff != "" {
		t.Fatalf("get differs:\n%s", diff)
	}

	upd, err := c.Orgs.UpdateOrganization(ctx, &v1.UpdateOrganizationRequest{
		Organization: &v1.Organization{Name: name, DisplayName: "Acme", Etag: got.GetOrganization().GetEtag()},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.GetOrganization().GetDisplayName() != "Acme" || upd.GetOrganization().GetEtag() == got.GetOrganization().GetEtag() {
		t.Fatalf("update gave %v", upd.GetOrganization())
	}
	// The old etag is stale now.
	_, err = c.Orgs.UpdateOrganization(ctx, &v1.UpdateOrganizationRequest{
		Organization: &v1.Organization{Name: name, DisplayName: "Late", Etag: got.GetOrganization().GetEtag()},
	})
	wantCode(t, err, codes.Aborted)
	wantViolation(t, errOf(c.Orgs.UpdateOrganization(ctx, &v1.UpdateOrganizationRequest{
		Organization: &v1.Organization{Name: name, DisplayName: "x"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"create_time"}},
	})), "update_mask")

	// An organization with tenants cannot be deleted.
	tenant := newTenant(t, s, ctx, name)
	wantCode(t, errOf(c.Orgs.DeleteOrganization(ctx, &v1.DeleteOrganizationRequest{Name: name})), codes.FailedPrecondition)
	if _, err := c.Tenants.DeleteTenant(ctx, &v1.DeleteTenantRequest{Name: tenant.GetName()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Orgs.DeleteOrganization(ctx, &v1.DeleteOrganizationRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, errOf(c.Orgs.GetOrganization(ctx, &v1.GetOrganizationRequest{Name: name})), codes.NotFound)
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	c := s.Clients()
	org := s.NewOrg(t, "Paging")
	var want []string
	for range 7 {
		want = append(want, newTenant(t, s, org.OperatorCtx, org.Name).GetName())
	}
	var got []string
	token := ""
	pages := 0
	for {
		resp, err := c.Tenants.ListTenants(org.ViewerCtx, &v1.ListTenantsRequest{Parent: org.Name, PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tn := range resp.GetTenants() {
			got = append(got, tn.GetName())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" || pages != 3 {
		t.Fatalf("pages=%d, list differs from creation order:\n%s", pages, diff)
	}
	wantViolation(t, errOf(c.Tenants.ListTenants(org.ViewerCtx, &v1.ListTenantsRequest{Parent: org.Name, PageToken: "garbage"})), "page_token")
	wantViolation(t, errOf(c.Tenants.ListTenants(org.ViewerCtx, &v1.ListTenantsRequest{Parent: org.Name, PageSize: -1})), "page_size")
}

// errOf drops a response, keeping the error.
func errOf[T any](_ T, err error) error { return err }
