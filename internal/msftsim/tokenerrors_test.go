package msftsim_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// tokenErr gets a token and returns the AADSTS error's body checked for
// Entra's shape, and the error as mserr classifies it.
func (e *env) tokenErr(t *testing.T, tenant, clientID, secret string, code int) (map[string]any, *mserr.Error) {
	t.Helper()
	_, err := e.token(e.secretCred(tenant, clientID, secret), msftsim.ResourceGraph)
	body := aadsts(t, err, code)
	if uri, _ := body["error_uri"].(string); !strings.HasSuffix(uri, fmt.Sprintf("/error?code=%d", code)) {
		t.Fatalf("error_uri %q", body["error_uri"])
	}
	var afe *azidentity.AuthenticationFailedError
	_ = errorsAs(err, &afe)
	afe.RawResponse.Body = nil // aadsts read it; classify from a fresh token call below
	_, err = e.token(e.secretCred(tenant, clientID, secret), msftsim.ResourceGraph)
	return body, mserr.Classify("entra", "token graph", err)
}

// Real conditions: an app registered in the tenant without its service
// principal answers AADSTS7000229; a tenant of another cloud answers
// AADSTS900382 at this (global) authority.
func TestTokenErrorsFromConditions(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	if err := e.admin.DeleteServicePrincipal(e.tenant, c.ClientID); err != nil {
		t.Fatal(err)
	}
	body, me := e.tokenErr(t, e.tenant, c.ClientID, c.ClientSecret, 7000229)
	if body["error"] != "invalid_client" || !strings.Contains(body["error_description"].(string), "is missing service principal in the tenant") {
		t.Fatalf("body %v", body)
	}
	if me.Class != mserr.ClassNoServicePrincipal || me.Status != 401 {
		t.Fatalf("classified %+v", me)
	}

	gov, err := e.admin.AddTenant(msftsim.TenantSpec{DisplayName: "Fabrikam (GCC High)", Cloud: "us-gov-gcc-high"})
	if err != nil {
		t.Fatal(err)
	}
	if gov.Cloud != "us-gov-gcc-high" {
		t.Fatalf("tenant info %+v", gov)
	}
	g, err := e.admin.CreateApp(gov.ID, msftsim.AppRequest{DisplayName: "Dropzone AI"})
	if err != nil {
		t.Fatal(err)
	}
	_, me = e.tokenErr(t, gov.ID, g.ClientID, g.ClientSecret, 900382)
	if me.Class != mserr.ClassWrongCloud || !strings.Contains(me.Remedy, "tenant.cloud") {
		t.Fatalf("classified %+v", me)
	}
}

// Fault rules produce every app-only sign-in error no condition does, in
// Entra's body shape, and mserr gives each its class.
func TestTokenErrorFaults(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	for code, class := range map[int]mserr.Class{
		90072: mserr.ClassWrongTenant, 900432: mserr.ClassWrongCloud, 90038: mserr.ClassWrongCloud,
		70001: mserr.ClassAppDisabled, 50001: mserr.ClassNotLicensed, 530032: mserr.ClassPolicyBlocked,
		7000218: mserr.ClassNotConfigured, 700024: mserr.ClassNotConfigured, 7000229: mserr.ClassNoServicePrincipal,
		900382: mserr.ClassWrongCloud,
	} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			e.admin.SetFaults(faults.Config{Tenants: map[string]faults.Scope{e.tenant: {Routes: map[string]faults.Rule{
				"entra.token": {TokenErrors: &faults.TokenErrors{Code: code}}}}}})
			_, me := e.tokenErr(t, e.tenant, c.ClientID, c.ClientSecret, code)
			if me.Class != class || me.Remedy == "" || me.Code != fmt.Sprintf("AADSTS%d", code) {
				t.Fatalf("classified %+v, want %s", me, class)
			}
		})
	}
	// Count bounds the injection; other tenants are untouched.
	e.admin.SetFaults(faults.Config{Tenants: map[string]faults.Scope{e.tenant: {Routes: map[string]faults.Rule{
		"entra.token": {TokenErrors: &faults.TokenErrors{Code: 530032, Injection: faults.Injection{Count: 1}}}}}}})
	if _, err := e.token(e.credFor(c), msftsim.ResourceGraph); err == nil {
		t.Fatal("first request not refused")
	}
	if _, err := e.token(e.credFor(c), msftsim.ResourceGraph); err != nil {
		t.Fatalf("second request refused past Count: %v", err)
	}
}
