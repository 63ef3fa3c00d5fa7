package microsoft_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// t0 is where the frozen simulator clock starts.
var t0 = time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)

const (
	subID = "11111111-2222-4333-8444-555555555555"
	rg    = "rg-sentinel"
	wsNm  = "ws-sentinel"
)

// Roles of a complete Defender + Sentinel integration, as msftsim's
// AppRequest.Roles spells them.
var (
	graphRoles = []string{"SecurityAlert.Read.All", "SecurityIncident.Read.All", "AuditLog.Read.All", "User.Read.All", "SecurityEvents.Read.All"}
	allRoles   = append(slices.Clone(graphRoles), "defender/Machine.Read.All", "log_analytics/Data.Read", "cloud_apps/investigation.read")
)

type env struct {
	t      *testing.T
	sim    *msftsim.Sim
	admin  *msftsim.Admin
	tenant string
	ws     msftsim.Workspace
	cfg    microsoft.Config
	client *microsoft.Client
}

// newEnv starts msftsim (fixed seed, frozen clock) with one tenant holding
// a Sentinel workspace, and a Client configured from msftsim's
// endpoints.json the way a deployment is (its caFile included).
func newEnv(t *testing.T, mod ...func(*microsoft.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	sim, err := msftsim.Start(t.Context(), msftsim.Options{Seed: 7, Now: t0, StateDir: dir, SigningKeyBits: 1024})
	if err != nil {
		t.Fatalf("msftsim.Start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	clouds, err := microsoft.LoadEndpointsFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		t.Fatalf("LoadEndpointsFile: %v", err)
	}
	e := &env{t: t, sim: sim, admin: sim.Admin()}
	e.cfg = microsoft.Config{Clouds: clouds, MaxThrottleWait: 5 * time.Second, TransientBackoff: 20 * time.Millisecond}
	for _, f := range mod {
		f(&e.cfg)
	}
	if e.client, err = microsoft.New(e.cfg); err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(e.client.CloseIdleConnections) // runs before the simulator stops
	ti, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Contoso", Domain: "contoso.onmicrosoft.com", Users: 3})
	if err != nil {
		t.Fatalf("AddTenant: %v", err)
	}
	e.tenant = ti.ID
	if e.ws, err = e.admin.AddWorkspace(e.tenant, msftsim.Workspace{SubscriptionID: subID, ResourceGroup: rg, Name: wsNm}); err != nil {
		t.Fatalf("AddWorkspace: %v", err)
	}
	return e
}

func rgScope() string { return "/subscriptions/" + subID + "/resourceGroups/" + rg }

// app registers a customer-managed app with admin-consented roles and
// optional Azure roles.
func (e *env) app(roles []string, azure ...msftsim.AzureRole) msftsim.AppCreds {
	e.t.Helper()
	c, err := e.admin.CreateApp(e.tenant, msftsim.AppRequest{DisplayName: "Dropzone AI", Roles: roles, AzureRoles: azure})
	if err != nil {
		e.t.Fatalf("CreateApp: %v", err)
	}
	return c
}

// fullApp is a complete Defender + Sentinel integration.
func (e *env) fullApp() msftsim.AppCreds {
	return e.app(allRoles, msftsim.AzureRole{Scope: rgScope(), Role: "Microsoft Sentinel Reader"})
}

func (e *env) creds(c msftsim.AppCreds) microsoft.Credentials {
	return microsoft.Credentials{Cloud: microsoft.CloudGlobal, TenantID: e.tenant, ClientID: c.ClientID, Secret: c.ClientSecret}
}

func (e *env) session(cr microsoft.Credentials) *microsoft.Session {
	e.t.Helper()
	s, err := e.client.NewSession(cr)
	if err != nil {
		e.t.Fatalf("NewSession: %v", err)
	}
	return s
}

func (e *env) workspace() *microsoft.Workspace {
	return &microsoft.Workspace{SubscriptionID: subID, ResourceGroup: rg, Name: wsNm, WorkspaceID: e.ws.CustomerID}
}

// wantErr asserts err is an *mserr.Error of class (and code, when given).
func wantErr(t *testing.T, err error, class mserr.Class, code string) *mserr.Error {
	t.Helper()
	var me *mserr.Error
	if !errors.As(err, &me) {
		t.Fatalf("want *mserr.Error %s %s, got %T %v", class, code, err, err)
	}
	if me.Class != class || code != "" && me.Code != code {
		t.Fatalf("want %s %s, got %s %s (%v)", class, code, me.Class, me.Code, me)
	}
	if me.Remedy == "" {
		t.Fatalf("no remedy: %v", me)
	}
	return me
}

// addPassword adds a secret to the app through Graph as the organization's
// provisioner would, so msftsim's SecretLag applies to it.
func (e *env) addPassword(objectID string) string {
	e.t.Helper()
	p, err := e.admin.RegisterProvisioner("d0d0d0d0-0000-4000-8000-000000000001", msftsim.AppRequest{DisplayName: "Dropzone Provisioner"})
	if err != nil {
		e.t.Fatalf("RegisterProvisioner: %v", err)
	}
	if _, err := e.admin.Consent(e.tenant, p.ClientID, []string{"Application.ReadWrite.All"}); err != nil {
		e.t.Fatalf("Consent: %v", err)
	}
	ep := e.sim.Endpoints()
	cred, err := azidentity.NewClientSecretCredential(e.tenant, p.ClientID, p.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ep.Authority},
			Transport: e.sim.HTTPClient(), Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableInstanceDiscovery: true})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := cred.GetToken(e.t.Context(), policy.TokenRequestOptions{Scopes: []string{msftsim.ResourceGraph + "/.default"}})
	if err != nil {
		e.t.Fatalf("provisioner token: %v", err)
	}
	body, _ := json.Marshal(map[string]any{"passwordCredential": map[string]any{"displayName": "rotated"}})
	req, _ := http.NewRequestWithContext(e.t.Context(), http.MethodPost, ep.Graph+"/applications/"+objectID+"/addPassword", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.sim.HTTPClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var pc struct {
		SecretText string `json:"secretText"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pc); err != nil || resp.StatusCode != 200 || pc.SecretText == "" {
		e.t.Fatalf("addPassword: %d %v", resp.StatusCode, err)
	}
	return pc.SecretText
}
