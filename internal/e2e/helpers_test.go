package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// wantCode fails unless err has code.
func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%q), want %v", st.Code(), st.Message(), code)
	}
	return st
}

// violatedFields lists the BadRequest fields of an InvalidArgument status.
func violatedFields(t *testing.T, err error) []string {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func wantViolation(t *testing.T, err error, field string) {
	t.Helper()
	if fields := violatedFields(t, err); !slices.Contains(fields, field) {
		t.Fatalf("violations %v do not name %s", fields, field)
	}
}

// countRows counts the rows of a table (to prove nothing was written).
func countRows(t *testing.T, s *stack.Stack, table string) int {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), "select count(*) from "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newTenant(t *testing.T, s *stack.Stack, ctx context.Context, org string) *v1.Tenant {
	t.Helper()
	resp, err := s.Clients().Tenants.CreateTenant(ctx, &v1.CreateTenantRequest{Parent: org, Tenant: &v1.Tenant{
		EntraTenantId: uuid.NewString(), Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: "Contoso",
	}})
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return resp.GetTenant()
}

const (
	defenderKind = v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER
	sentinelKind = v1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL
)

func newIntegration(t *testing.T, s *stack.Stack, ctx context.Context, tenant, secret string) *v1.Integration {
	t.Helper()
	resp, err := s.Clients().Integrations.CreateIntegration(ctx, &v1.CreateIntegrationRequest{
		Parent:       tenant,
		Integration:  &v1.Integration{Kind: defenderKind, Application: &v1.EntraApplication{ClientId: uuid.NewString()}},
		ClientSecret: secret,
	})
	if err != nil {
		t.Fatalf("CreateIntegration: %v", err)
	}
	return resp.GetIntegration()
}

// waitJobs polls until every River job of kind is completed (there is at
// least one).
func waitJobs(t *testing.T, s *stack.Stack, kind string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var all, done int
		if err := s.DB.QueryRow(ctx, `select count(*), count(*) filter (where state = 'completed') from river_job where kind = $1`,
			kind).Scan(&all, &done); err != nil {
			t.Fatal(err)
		}
		if all > 0 && all == done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d %s jobs completed within 30s", done, all, kind)
		case <-time.After(50 * time.Millisecond): // polling the job's state
		}
	}
}
