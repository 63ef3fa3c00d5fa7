package microsoft

import (
	"context"

	"github.com/microsoftgraph/msgraph-sdk-go/applications"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// GetApplicationByAppID reads the application whose client ID is appID:
//
//	GET /applications?$filter=appId eq '{appId}'&$select=...
//
// (https://learn.microsoft.com/en-us/graph/api/application-list; the
// provisioner's Application.Read.All suffices). No such application is a
// ClassNotFound error.
func (d *Directory) GetApplicationByAppID(ctx context.Context, appID string) (Application, error) {
	const op = "GET /applications?$filter=appId"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return Application{}, err
	}
	filter := "appId eq '" + appID + "'"
	r, err := g.Applications().Get(ctx, &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Filter: &filter, Select: appSelect}})
	if err != nil {
		return Application{}, gerr(op, err)
	}
	for _, a := range r.GetValue() {
		if a != nil && a.GetAppId() != nil && *a.GetAppId() == appID {
			return toApplication(a), nil
		}
	}
	return Application{}, &mserr.Error{Service: "graph", Operation: op, Class: mserr.ClassNotFound, Status: 404, Message: "no application with appId " + appID}
}
