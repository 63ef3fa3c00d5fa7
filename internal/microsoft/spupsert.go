package microsoft

import (
	"context"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"
)

// UpsertServicePrincipal makes sure appID has a service principal in the
// tenant: PATCH /servicePrincipals(appId='{appID}') with
// Prefer: create-if-missing ("Upsert servicePrincipal": 201 Created with
// the new service principal, 204 No Content when one existed; least
// privileged application permission Application.ReadWrite.OwnedBy).
// created reports the 201. An upsert by key is safe to repeat, so a lost
// answer is simply sent again; right after the application was created,
// Graph may answer with replication lag (mserr's not-replicated class),
// as for POST /servicePrincipals.
// displayName is sent as the body (Microsoft's example sends one; the
// service principal's is the application's anyway).
func (d *Directory) UpsertServicePrincipal(ctx context.Context, appID, displayName string) (sp ServicePrincipal, created bool, err error) {
	const op = "PATCH /servicePrincipals(appId=)"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return ServicePrincipal{}, false, err
	}
	h := abs.NewRequestHeaders()
	h.Add("Prefer", "create-if-missing")
	body := models.NewServicePrincipal()
	if displayName != "" {
		body.SetDisplayName(&displayName)
	}
	got, err := g.ServicePrincipalsWithAppId(&appID).Patch(ctx, body,
		&serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderPatchRequestConfiguration{Headers: h})
	if err != nil {
		return ServicePrincipal{}, false, gerr(op, err)
	}
	if got != nil && got.GetId() != nil {
		return toServicePrincipal(got), true, nil
	}
	sp, err = d.GetServicePrincipalByAppID(ctx, appID)
	return sp, false, err
}
