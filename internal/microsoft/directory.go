package microsoft

import (
	"context"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// Directory reads and writes one tenant's directory (Graph) and Azure RBAC
// (ARM) with one application's credentials, normally the organization's
// consented provisioner. See doc.go for the retry rules every method
// follows. Errors are *mserr.Error. Safe for concurrent use.
type Directory struct {
	s *Session
}

// NewDirectory opens the directory and Azure RBAC of cr's tenant with cr's
// application (the organization's provisioner): a session of its own.
func (c *Client) NewDirectory(cr Credentials) (*Directory, error) {
	s, err := c.NewSession(cr)
	if err != nil {
		return nil, err
	}
	return &Directory{s: s}, nil
}

// Prefetch requests the session's Graph token now, so that the first
// directory call finds it in the session (a provisioning asks for it while
// its operation's job is being picked up). A failure is left to that call:
// it asks again (after any Retry-After the token endpoint answered).
func (d *Directory) Prefetch(ctx context.Context) {
	_, _, _ = d.s.rawToken(d.s.operation(ctx), APIGraph)
}

// AppRoleGrants is the authoritative list of
// what Entra granted (admin consent) to clientID's service principal:
//
//	GET /servicePrincipals(appId='{clientId}')?$select=id
//	GET /servicePrincipals/{id}/appRoleAssignments
//	GET /servicePrincipals/{resourceId}?$select=appId,appRoles   (once per resource)
//
// Role IDs are resolved to values from each resource's appRoles, so they
// are right in every cloud.
func (d *Directory) AppRoleGrants(ctx context.Context, clientID string) ([]Grant, error) {
	s := d.s
	ctx = s.operation(ctx)
	g, err := s.graphClient()
	if err != nil {
		return nil, classify("graph", "graph client", APIGraph, err)
	}
	if _, _, err := s.rawToken(ctx, APIGraph); err != nil {
		return nil, err
	}
	sp, err := g.ServicePrincipalsWithAppId(&clientID).Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
		QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{Select: []string{"id"}}})
	if err != nil {
		return nil, classify("graph", "GET /servicePrincipals(appId=)", APIGraph, err)
	}
	if sp.GetId() == nil {
		return nil, &mserr.Error{Service: "graph", Operation: "GET /servicePrincipals(appId=)", Code: "NoServicePrincipal",
			Class: mserr.ClassNotFound, Message: "the application has no service principal in the tenant",
			Remedy: "Grant admin consent to the application in the tenant (it creates the service principal)."}
	}
	var grants []Grant
	resources := map[string]map[string]string{} // resource SP id -> role id -> value
	appIDs := map[string]string{}               // resource SP id -> appId
	page, err := g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).AppRoleAssignments().Get(ctx, nil)
	for {
		if err != nil {
			return nil, classify("graph", "GET /servicePrincipals/{id}/appRoleAssignments", APIGraph, err)
		}
		for _, a := range page.GetValue() {
			if a.GetResourceId() == nil || a.GetAppRoleId() == nil {
				continue
			}
			rid := a.GetResourceId().String()
			roles, ok := resources[rid]
			if !ok {
				res, err := g.ServicePrincipals().ByServicePrincipalId(rid).Get(ctx, &serviceprincipals.ServicePrincipalItemRequestBuilderGetRequestConfiguration{
					QueryParameters: &serviceprincipals.ServicePrincipalItemRequestBuilderGetQueryParameters{Select: []string{"appId", "appRoles"}}})
				if err != nil {
					return nil, classify("graph", "GET /servicePrincipals/{resourceId}", APIGraph, err)
				}
				roles = map[string]string{}
				for _, r := range res.GetAppRoles() {
					if r.GetId() != nil && r.GetValue() != nil {
						roles[r.GetId().String()] = *r.GetValue()
					}
				}
				resources[rid] = roles
				if res.GetAppId() != nil {
					appIDs[rid] = strings.ToLower(*res.GetAppId())
				}
			}
			if v, ok := roles[a.GetAppRoleId().String()]; ok {
				grants = append(grants, Grant{ResourceAppID: appIDs[rid], Value: v})
			}
		}
		next := page.GetOdataNextLink()
		if next == nil || *next == "" {
			return grants, nil
		}
		page, err = g.ServicePrincipals().ByServicePrincipalId(*sp.GetId()).AppRoleAssignments().WithUrl(*next).Get(ctx, nil)
	}
}
