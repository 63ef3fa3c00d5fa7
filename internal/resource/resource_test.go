package resource

import (
	"testing"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

func TestRoundTrip(t *testing.T) {
	o, tn, i := uuid.New(), uuid.New(), uuid.New()
	name := Integration{Org: o, Tenant: tn, Integration: i}.String()
	got, err := ParseIntegration("name", name)
	if err != nil || got != (Integration{o, tn, i}) {
		t.Fatalf("ParseIntegration(%q) = %v, %v", name, got, err)
	}
	p, err := ParseTenantParent("parent", Org{o}.String()+"/tenants/-")
	if err != nil || !p.AllTenants || p.Org != o {
		t.Fatalf("wildcard parent: %v %v", p, err)
	}
}

func TestMalformedNamesNameTheField(t *testing.T) {
	for _, name := range []string{
		"", "organizations", "organizations/", "organizations/x", "tenants/" + uuid.NewString(),
		"organizations/" + uuid.NewString() + "/tenants", "organizations/" + uuid.NewString() + "/tenants/-",
		"organizations/" + uuid.NewString() + "/tenants/" + uuid.NewString() + "/extra",
		"organizations/{" + uuid.NewString() + "}/tenants/" + uuid.NewString(),
	} {
		_, err := ParseTenant("tenant.name", name)
		e, ok := apperr.From(err)
		if !ok || e.Kind != apperr.InvalidArgument || len(e.Violations) != 1 || e.Violations[0].Field != "tenant.name" {
			t.Errorf("ParseTenant(%q) = %v", name, err)
		}
	}
}
