package app

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// This file connects verify's small interfaces (verify.Microsoft,
// verify.Session, verify.Directory, verify.Provisioners) to the Microsoft
// adapter and the consent service, so that neither of those imports
// verify and verify imports neither. Conversions are field by field; a
// probe verify names that the adapter does not know is refused here.

// verifyMicrosoft implements verify.Microsoft with a *microsoft.Client.
type verifyMicrosoft struct{ c *microsoft.Client }

var (
	_ verify.Microsoft       = verifyMicrosoft{}
	_ verify.Session         = verifySession{}
	_ verify.AzureRoleReader = verifySession{}
	_ verify.Directory       = verifyDirectory{}
	_ verify.Provisioners    = verifyProvisioners{}
)

// msCredentials converts verify's credentials; a certificate credential's
// PEM (private key and certificate) is parsed here, so that tokens are
// requested with a client assertion (azidentity's certificate credential).
func msCredentials(c verify.Credentials) (microsoft.Credentials, error) {
	out := microsoft.Credentials{Cloud: c.Cloud, Org: c.Org, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret}
	if c.Certificate != "" {
		cert, err := microsoft.ParseCertificate([]byte(c.Certificate), nil)
		if err != nil {
			return out, err
		}
		out.Secret, out.Certificate = "", cert
	}
	return out, nil
}

func (m verifyMicrosoft) NewSession(c verify.Credentials) (verify.Session, error) {
	mc, err := msCredentials(c)
	if err != nil {
		return nil, err
	}
	s, err := m.c.NewSession(mc)
	if err != nil {
		return nil, err
	}
	return verifySession{s}, nil
}

func (m verifyMicrosoft) NewDirectory(c verify.Credentials) (verify.Directory, error) {
	mc, err := msCredentials(c)
	if err != nil {
		return nil, err
	}
	d, err := m.c.NewDirectory(mc)
	if err != nil {
		return nil, err
	}
	return verifyDirectory{d}, nil
}

type verifySession struct{ s *microsoft.Session }

// msAPIs and msProbes name verify's values in the adapter's terms.
var (
	msAPIs = map[verify.API]microsoft.API{
		verify.APIGraph: microsoft.APIGraph, verify.APIDefender: microsoft.APIDefender, verify.APICloudApps: microsoft.APICloudApps,
		verify.APIExchange: microsoft.APIExchange, verify.APILogAnalytics: microsoft.APILogAnalytics, verify.APIARM: microsoft.APIARM,
	}
	msProbes = map[verify.Probe]microsoft.Probe{
		verify.ProbeGraphAlerts: microsoft.ProbeGraphAlerts, verify.ProbeGraphIncidents: microsoft.ProbeGraphIncidents,
		verify.ProbeGraphSignIns: microsoft.ProbeGraphSignIns, verify.ProbeGraphUsers: microsoft.ProbeGraphUsers,
		verify.ProbeDefenderMachines: microsoft.ProbeDefenderMachines,
		verify.ProbeCloudAppsAlerts:  microsoft.ProbeCloudAppsAlerts, verify.ProbeSentinelWorkspace: microsoft.ProbeSentinelWorkspace,
		verify.ProbeLogAnalyticsQuery: microsoft.ProbeLogAnalyticsQuery, verify.ProbeSentinelIncidents: microsoft.ProbeSentinelIncidents,
	}
)

func (v verifySession) Token(ctx context.Context, api verify.API) (verify.Token, error) {
	a, ok := msAPIs[api]
	if !ok {
		return verify.Token{}, fmt.Errorf("verify API %q has no Microsoft adapter equivalent", api)
	}
	t, err := v.s.Token(ctx, a)
	return verify.Token{Roles: t.Roles, ExpiresOn: t.ExpiresOn}, err
}

func (v verifySession) Probe(ctx context.Context, p verify.Probe, ws *verify.Workspace) error {
	mp, ok := msProbes[p]
	if !ok {
		// The adapter answers an unknown probe with a classified error.
		mp = microsoft.Probe(p)
	}
	var mws *microsoft.Workspace
	if ws != nil {
		mws = &microsoft.Workspace{SubscriptionID: ws.SubscriptionID, ResourceGroup: ws.ResourceGroup, Name: ws.Name, WorkspaceID: ws.WorkspaceID}
	}
	return v.s.Probe(ctx, mp, mws)
}

// WorkspaceRoles implements verify.AzureRoleReader: the session's own
// Azure role assignments at the workspace.
func (v verifySession) WorkspaceRoles(ctx context.Context, ws *verify.Workspace) (string, []verify.AzureRoleAssignment, error) {
	var mws *microsoft.Workspace
	if ws != nil {
		mws = &microsoft.Workspace{SubscriptionID: ws.SubscriptionID, ResourceGroup: ws.ResourceGroup, Name: ws.Name, WorkspaceID: ws.WorkspaceID}
	}
	principal, as, err := v.s.WorkspaceRoleAssignments(ctx, mws)
	out := make([]verify.AzureRoleAssignment, len(as))
	for i, a := range as {
		out[i] = verify.AzureRoleAssignment{RoleDefinitionID: a.RoleDefinitionID, Scope: a.Scope}
	}
	return principal, out, err
}

type verifyDirectory struct{ d *microsoft.Directory }

// verifyDirectoryOf adapts a provisioner session of provisioning (a
// *microsoft.Directory) to verify's port; nil for anything else.
func verifyDirectoryOf(d provision.Directory) verify.Directory {
	if md, ok := d.(*microsoft.Directory); ok && md != nil {
		return verifyDirectory{md}
	}
	return nil
}

func (v verifyDirectory) AppRoleGrants(ctx context.Context, clientID string) ([]verify.Grant, error) {
	gs, err := v.d.AppRoleGrants(ctx, clientID)
	if err != nil {
		return nil, err
	}
	out := make([]verify.Grant, len(gs))
	for i, g := range gs {
		out[i] = verify.Grant{ResourceAppID: g.ResourceAppID, Value: g.Value}
	}
	return out, nil
}

// verifyProvisioners implements verify.Provisioners with the consent
// service's provisioner credentials.
type verifyProvisioners struct{ c *consent.Service }

func (p verifyProvisioners) ForTenant(ctx context.Context, org uuid.UUID, t tenant.Tenant) (verify.Credentials, bool, error) {
	c, ok, err := p.c.ForTenant(ctx, org, t)
	return verify.Credentials{Cloud: c.Cloud, Org: c.Org, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret}, ok, err
}

// VerifyMicrosoft adapts the Microsoft client to verify's ports (for
// tests that assemble a verify.Service themselves).
func VerifyMicrosoft(c *microsoft.Client) verify.Microsoft { return verifyMicrosoft{c} }

var _ verify.CredentialReader = verifyDirectory{}

// ApplicationCredentials implements verify.CredentialReader: the
// application's password and key credentials as Entra has them.
func (v verifyDirectory) ApplicationCredentials(ctx context.Context, clientID string) ([]verify.AppCredential, error) {
	a, err := v.d.GetApplicationByAppID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	out := make([]verify.AppCredential, 0, len(a.Passwords)+len(a.Keys))
	for _, p := range a.Passwords {
		out = append(out, verify.AppCredential{KeyID: p.KeyID, Hint: p.Hint, End: p.End})
	}
	for _, k := range a.Keys {
		out = append(out, verify.AppCredential{KeyID: k.KeyID, End: k.End, Certificate: true})
	}
	return out, nil
}
