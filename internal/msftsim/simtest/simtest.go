// Package simtest gives dzconnect's tests a ready simulator: one licensed
// tenant with a Sentinel workspace, the organization's provisioner app
// consented there, and the azidentity / msgraph-sdk-go wiring pointed at it.
package simtest

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// Fixed identifiers of the default environment.
const (
	HomeTenantID   = "aaaaaaaa-0000-4000-8000-000000000001"
	SubscriptionID = "11111111-2222-4333-8444-555555555555"
	ResourceGroup  = "rg-sentinel"
	WorkspaceName  = "ws-sentinel"
)

// ProvisionerRoles are the Graph roles the provisioner is consented with:
// the least privilege docs/provisioning.md asks a customer for
// (Application.ReadWrite.OwnedBy, not .All; no RoleManagement: the
// directory role is a customer step), so tests prove that minimum works.
var ProvisionerRoles = []string{"Application.ReadWrite.OwnedBy", "Application.Read.All",
	"AppRoleAssignment.ReadWrite.All", "Policy.Read.All"}

// ProvisionerRBACCondition is the ABAC condition of the provisioner's Role
// Based Access Control Administrator assignment (docs/provisioning.md,
// "Azure role at the Sentinel scope"): it may write assignments only of
// Microsoft Sentinel Reader, Microsoft Sentinel Responder and Log
// Analytics Reader to service principals, and delete only those.
const ProvisionerRBACCondition = `(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {8d289c81-5878-46d4-8554-54e1e3d8b5cb, 3e150937-b8fe-4cfb-8069-0eaf05ecd056, 73c42c96-874c-492b-b04d-ab87d138a893}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {8d289c81-5878-46d4-8554-54e1e3d8b5cb, 3e150937-b8fe-4cfb-8069-0eaf05ecd056, 73c42c96-874c-492b-b04d-ab87d138a893}
 )
)`

// ProvisionerAzureRole is the Azure role a customer grants the provisioner
// at scope (the workspace's resource group): Role Based Access Control
// Administrator with ProvisionerRBACCondition.
func ProvisionerAzureRole(scope string) msftsim.AzureRole {
	return msftsim.AzureRole{Scope: scope, Role: "Role Based Access Control Administrator", Condition: ProvisionerRBACCondition}
}

// Start is the simulator clock's start in a default Env.
var Start = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

// Env is a started simulator with one customer tenant.
type Env struct {
	Sim         *msftsim.Sim
	Endpoints   msftsim.Endpoints
	Admin       *msftsim.Admin
	TenantID    string
	Workspace   msftsim.Workspace
	Provisioner msftsim.AppCreds // TenantID set to the customer tenant
	tb          testing.TB
}

// Option adjusts the simulator options before start.
type Option func(*msftsim.Options)

// New starts a simulator (seed 42, clock frozen at Start) closed when the
// test ends, with a fully licensed tenant "Contoso", a workspace, and the
// provisioner consented with ProvisionerRoles and ProvisionerAzureRole
// on the workspace's resource group.
func New(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	o := msftsim.Options{Seed: 42, Now: Start}
	for _, f := range opts {
		f(&o)
	}
	sim, err := msftsim.Start(tb.Context(), o)
	if err != nil {
		tb.Fatalf("starting msftsim: %v", err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	e := &Env{Sim: sim, Endpoints: sim.Endpoints(), Admin: sim.Admin(), tb: tb}
	ti, err := e.Admin.AddTenant(msftsim.TenantSpec{DisplayName: "Contoso", Domain: "contoso.onmicrosoft.com"})
	if err != nil {
		tb.Fatalf("adding tenant: %v", err)
	}
	e.TenantID = ti.ID
	if e.Workspace, err = e.Admin.AddWorkspace(e.TenantID, msftsim.Workspace{SubscriptionID: SubscriptionID,
		ResourceGroup: ResourceGroup, Name: WorkspaceName}); err != nil {
		tb.Fatalf("adding workspace: %v", err)
	}
	p, err := e.Admin.RegisterProvisioner(HomeTenantID, msftsim.AppRequest{DisplayName: "Dropzone Provisioner"})
	if err != nil {
		tb.Fatalf("registering provisioner: %v", err)
	}
	if _, err := e.Admin.Consent(e.TenantID, p.ClientID, ProvisionerRoles, ProvisionerAzureRole(e.ResourceGroupScope())); err != nil {
		tb.Fatalf("consenting provisioner: %v", err)
	}
	p.TenantID = e.TenantID
	e.Provisioner = p
	return e
}

// ResourceGroupScope is the workspace's resource group as an ARM scope.
func (e *Env) ResourceGroupScope() string {
	return "/subscriptions/" + e.Workspace.SubscriptionID + "/resourceGroups/" + e.Workspace.ResourceGroup
}

// CustomerApp creates a customer-managed app with a secret and the given
// admin-consented roles ("Value" or "resource/Value").
func (e *Env) CustomerApp(roles ...string) msftsim.AppCreds {
	e.tb.Helper()
	c, err := e.Admin.CreateApp(e.TenantID, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles})
	if err != nil {
		e.tb.Fatalf("creating app: %v", err)
	}
	return c
}

// ClientOptions are azcore options pointing at the simulator; retries as
// azcore's defaults unless maxRetries is given (-1 disables them).
func (e *Env) ClientOptions(maxRetries ...int32) azcore.ClientOptions {
	o := azcore.ClientOptions{Cloud: e.Endpoints.CloudConfiguration(), Transport: e.Sim.HTTPClient()}
	if len(maxRetries) > 0 {
		o.Retry = policy.RetryOptions{MaxRetries: maxRetries[0]}
	}
	return o
}

// SecretCredential is azidentity's client-secret credential for c.
func (e *Env) SecretCredential(c msftsim.AppCreds, maxRetries ...int32) azcore.TokenCredential {
	e.tb.Helper()
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.ClientOptions(maxRetries...), DisableInstanceDiscovery: true})
	if err != nil {
		e.tb.Fatalf("NewClientSecretCredential: %v", err)
	}
	return cred
}

// CertificateCredential is azidentity's certificate credential.
func (e *Env) CertificateCredential(tenantID, clientID string, cert *x509.Certificate, key *rsa.PrivateKey) azcore.TokenCredential {
	e.tb.Helper()
	cred, err := azidentity.NewClientCertificateCredential(tenantID, clientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		e.tb.Fatalf("NewClientCertificateCredential: %v", err)
	}
	return cred
}

// Graph is an msgraph-sdk-go client on cred, with the SDK's default
// middleware (retry, redirect, compression) over a transport that trusts
// the simulator's CA.
func (e *Env) Graph(cred azcore.TokenCredential) *msgraphsdk.GraphServiceClient {
	e.tb.Helper()
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred,
		[]string{msftsim.ResourceGraph + "/.default"}, []string{e.Endpoints.Host})
	if err != nil {
		e.tb.Fatalf("graph auth provider: %v", err)
	}
	opts := msgraphsdk.GetDefaultClientOptions()
	hc := msgraphcore.GetDefaultClient(&opts)
	parent := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.Sim.CAPool(), MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	hc.Transport = khttp.NewCustomTransportWithParentTransport(parent, msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...)
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		e.tb.Fatalf("graph request adapter: %v", err)
	}
	adapter.SetBaseUrl(e.Endpoints.Graph)
	return msgraphsdk.NewGraphServiceClient(adapter)
}
