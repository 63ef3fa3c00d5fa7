package mserr

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// entra is an Entra token error body as login.microsoftonline.com sends it.
func entra(code int, oauth, desc string) string {
	return fmt.Sprintf(`{"error":%q,"error_description":"AADSTS%d: %s Trace ID: 0f0e Correlation ID: 1a2b Timestamp: 2026-01-15 09:00:00Z",`+
		`"error_codes":[%d],"timestamp":"2026-01-15 09:00:00Z","trace_id":"0f0e","correlation_id":"1a2b"}`, oauth, code, desc, code)
}

// odata is Graph's / ARM's / Defender's {"error":{"code","message"}} body.
func odata(code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q,"innerError":{"date":"2026-01-15T09:00:00","request-id":"r"}}}`, code, msg)
}

type tcase struct {
	name    string
	service string
	status  int
	body    string
	class   Class
	code    string
	lag     bool
}

// cases cover every row of the table (checked below) plus the fallbacks.
var cases = []tcase{
	// Entra (section 4).
	{"invalid secret", "entra", 401, entra(7000215, "invalid_client", "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."), ClassInvalidSecret, "AADSTS7000215", true},
	{"no secret", "entra", 400, entra(7000216, "invalid_request", "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."), ClassInvalidSecret, "AADSTS7000216", false},
	{"expired secret", "entra", 401, entra(7000222, "invalid_client", "The provided client secret keys for app 'x' are expired."), ClassExpiredSecret, "AADSTS7000222", false},
	{"app not found", "entra", 400, entra(700016, "unauthorized_client", "Application with identifier 'x' was not found in the directory 'Contoso'."), ClassAppNotFound, "AADSTS700016", true},
	{"tenant not found", "entra", 400, entra(90002, "invalid_tenant", "Tenant 'x' not found."), ClassTenantNotFound, "AADSTS90002", false},
	{"tenant malformed", "entra", 400, entra(900023, "invalid_tenant", "Specified tenant identifier 'x' is neither a valid DNS name, nor a valid external domain."), ClassTenantNotFound, "AADSTS900023", false},
	{"external account not in tenant", "entra", 400, entra(90072, "invalid_grant", "User account 'x' from identity provider 'live.com' does not exist in tenant 'Contoso' and cannot access the application."), ClassWrongTenant, "AADSTS90072", false},
	{"no service principal", "entra", 401, entra(7000229, "invalid_client", "The client application 00001111-aaaa-2222-bbbb-3333cccc4444 is missing service principal in the tenant aaaabbbb-0000-cccc-1111-dddd2222eeee. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"), ClassNoServicePrincipal, "AADSTS7000229", true},
	{"cross cloud 900382", "entra", 400, entra(900382, "invalid_request", "Confidential Client is not supported in Cross Cloud request."), ClassWrongCloud, "AADSTS900382", false},
	{"cross cloud 900432", "entra", 400, entra(900432, "invalid_request", "Confidential Client is not supported in Cross Cloud request."), ClassWrongCloud, "AADSTS900432", false},
	{"national cloud redirection", "entra", 400, entra(90038, "invalid_request", "NationalCloudTenantRedirection: The specified tenant 'x' belongs to the National Cloud 'USGov'. Current cloud instance 'Prod' does not federate with 'USGov'."), ClassWrongCloud, "AADSTS90038", false},
	{"application disabled 70001", "entra", 400, entra(70001, "unauthorized_client", "Application 'x' is disabled."), ClassAppDisabled, "AADSTS70001", false},
	{"resource disabled or absent", "entra", 400, entra(50001, "invalid_resource", "The application named https://api.securitycenter.microsoft.com was not found in the tenant named Contoso."), ClassNotLicensed, "AADSTS50001", false},
	{"security policy", "entra", 400, entra(530032, "invalid_grant", "Blocked by security policy."), ClassPolicyBlocked, "AADSTS530032", false},
	{"no credential sent", "entra", 401, entra(7000218, "invalid_client", "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."), ClassNotConfigured, "AADSTS7000218", false},
	{"assertion outside window", "entra", 401, entra(700024, "invalid_client", "Client assertion is not within its valid time range."), ClassNotConfigured, "AADSTS700024", false},
	{"resource principal missing", "entra", 400, entra(500011, "invalid_resource", "The resource principal named https://api.securitycenter.microsoft.com was not found in the tenant named Contoso."), ClassNotLicensed, "AADSTS500011", false},
	{"service principal lacking", "entra", 400, entra(650052, "invalid_client", "The app is trying to access a service that your organization lacks a service principal for."), ClassNotLicensed, "AADSTS650052", false},
	{"certificate invalid", "entra", 401, entra(700027, "invalid_client", "Client assertion contains an invalid signature."), ClassCertificateInvalid, "AADSTS700027", false},
	{"certificate key removed", "entra", 401, entra(700027, "invalid_client", "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]"), ClassCertificateInvalid, "AADSTS700027", false},
	{"certificate outside validity", "entra", 401, entra(7000274, "invalid_client", "Certificate is not within its validity period."), ClassCertificateInvalid, "AADSTS7000274", false},
	{"certificate outside window", "entra", 401, entra(1000502, "invalid_client", "Certificate is outside its validity window."), ClassCertificateInvalid, "AADSTS1000502", false},
	{"certificate revoked", "entra", 401, entra(7000214, "invalid_client", "Certificate has been revoked."), ClassCertificateInvalid, "AADSTS7000214", false},
	{"certificate was revoked", "entra", 401, entra(7000277, "invalid_client", "Certificate was revoked."), ClassCertificateInvalid, "AADSTS7000277", false},
	{"assertion time range", "entra", 401, entra(700024, "invalid_client", "Client assertion is not within its valid time range."), ClassNotConfigured, "AADSTS700024", false},
	{"assertion issuer", "entra", 401, entra(700021, "invalid_client", "Client assertion application identifier doesn't match 'client_id' parameter."), ClassBadRequest, "AADSTS700021", false},
	{"assertion audience", "entra", 401, entra(700023, "invalid_client", "Client assertion audience claim does not match Realm issuer."), ClassBadRequest, "AADSTS700023", false},
	{"assertion malformed", "entra", 400, entra(50027, "invalid_request", "JWT token is invalid or malformed."), ClassBadRequest, "AADSTS50027", false},
	{"app disabled", "entra", 400, entra(7000112, "unauthorized_client", "Application 'x'(Dropzone AI) is disabled."), ClassAppDisabled, "AADSTS7000112", false},
	{"conditional access", "entra", 400, entra(53003, "invalid_grant", "Access has been blocked by Conditional Access policies."), ClassPolicyBlocked, "AADSTS53003", false},
	{"token throttled", "entra", 429, entra(90055, "temporarily_unavailable", "TenantThrottlingError - There are too many incoming requests."), ClassThrottled, "AADSTS90055", false},
	{"token request throttled", "entra", 429, entra(50196, "temporarily_unavailable", "The server terminated an operation because it encountered a client request loop."), ClassThrottled, "AADSTS50196", false},
	{"entra transient", "entra", 500, entra(90033, "temporarily_unavailable", "A transient error has occurred. Please try again."), ClassTransient, "AADSTS90033", false},
	{"invalid scope", "entra", 400, entra(1002012, "invalid_scope", "The provided value for scope x is not valid."), ClassBadRequest, "AADSTS1002012", false},
	{"invalid resource", "entra", 400, entra(70011, "invalid_scope", "The provided request must include a 'scope' input parameter."), ClassBadRequest, "AADSTS70011", false},
	{"entra unknown code", "entra", 400, entra(123456, "invalid_request", "Something new."), ClassBadRequest, "AADSTS123456", false},

	// Graph, replication lag (section 5).
	{"sp backing app lag", "graph", 403, odata("Authorization_RequestDenied", "When using this permission, the backing application of the service principal being created must in the local tenant"), ClassNotReplicated, "Authorization_RequestDenied", true},
	{"sp create lag", "graph", 400, odata("Request_BadRequest", "The appId 'x' of the service principal does not reference a valid application object."), ClassNotReplicated, "Request_BadRequest", true},
	{"assignment lag", "graph", 400, odata("Request_BadRequest", "Not a valid reference update."), ClassNotReplicated, "Request_BadRequest", true},
	{"assignment exists", "graph", 400, odata("Request_BadRequest", "Permission being assigned already exists on the object"), ClassConflict, "Request_BadRequest", false},
	{"directory role exists", "graph", 400, odata("Request_BadRequest", "A conflicting object with one or more of the specified property values is present in the directory."), ClassConflict, "Request_BadRequest", false},
	{"credential conflict", "graph", 400, odata("Request_BadRequest", "Unable to complete the operation due to concurrent requests being made to the tenant. Please try again."), ClassConflict, "Request_BadRequest", true},
	{"msa app lag", "graph", 409, odata("Error_MsaAppDoesNotExist", "The application does not exist or is not yet replicated. Retry the request."), ClassNotReplicated, "Error_MsaAppDoesNotExist", true},
	{"object not found", "graph", 404, odata("Request_ResourceNotFound", "Resource 'x' does not exist or one of its queried reference-property objects are not present."), ClassNotFound, "Request_ResourceNotFound", true},
	// Graph, policy and permissions.
	{"secrets forbidden by policy", "graph", 400, `{"error":{"code":"CredentialTypeNotAllowedAsPerAppPolicy","message":"Password addition is not allowed as per assigned policy.","details":[{"code":"InvalidCredentialType"}]}}`, ClassPolicyBlocked, "CredentialTypeNotAllowedAsPerAppPolicy", false},
	{"secret lifetime by policy", "graph", 400, odata("CredentialInvalidLifetimeAsPerAppPolicy", "Credential lifetime exceeds the max value allowed as per assigned policy."), ClassPolicyBlocked, "CredentialInvalidLifetimeAsPerAppPolicy", false},
	{"sign-ins need P1", "graph", 403, odata("Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license"), ClassNotLicensed, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", false},
	{"graph permission denied", "graph", 403, odata("Authorization_RequestDenied", "Insufficient privileges to complete the operation."), ClassPermissionMissing, "Authorization_RequestDenied", true},
	// The ambiguous 403 "Forbidden" (Graph security API, Defender).
	{"graph security missing roles", "graph", 403, odata("Forbidden", "Missing application roles. API required roles: SecurityAlert.Read.All,SecurityAlert.ReadWrite.All, application roles: ."), ClassPermissionMissing, "Forbidden", true},
	{"graph security not onboarded", "graph", 403, odata("Forbidden", "Tenant is not onboarded to Microsoft 365 Defender. Missing license or the tenant is not provisioned."), ClassNotLicensed, "Forbidden", false},
	{"graph security not provisioned", "graph", 403, odata("UnknownError", "Unauthorized request. Account is not provisioned."), ClassNotLicensed, "UnknownError", false},
	{"defender missing roles", "defender", 403, odata("Forbidden", "Missing application roles. API required roles: Machine.Read.All,Machine.ReadWrite.All, application roles: Machine.Isolate."), ClassPermissionMissing, "Forbidden", true},
	{"defender not onboarded", "defender", 403, odata("Forbidden", "Tenant is not onboarded to Microsoft Defender for Endpoint."), ClassNotLicensed, "Forbidden", false},
	// ARM.
	{"principal not found", "arm", 400, odata("PrincipalNotFound", "Principal x does not exist in the directory y."), ClassNotReplicated, "PrincipalNotFound", true},
	{"role assignment exists", "arm", 409, odata("RoleAssignmentExists", "The role assignment already exists."), ClassConflict, "RoleAssignmentExists", false},
	{"arm authorization failed", "arm", 403, odata("AuthorizationFailed", "The client 'x' with object id 'x' does not have authorization to perform action 'Microsoft.OperationalInsights/workspaces/read'."), ClassPermissionMissing, "AuthorizationFailed", true},
	{"subscription of another tenant", "arm", 401, odata("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer."), ClassNotFound, "InvalidAuthenticationTokenTenant", false},
	{"subscription not found", "arm", 404, odata("SubscriptionNotFound", "The subscription 'x' could not be found."), ClassNotFound, "SubscriptionNotFound", false},
	{"resource group not found", "arm", 404, odata("ResourceGroupNotFound", "Resource group 'x' could not be found."), ClassNotFound, "ResourceGroupNotFound", false},
	{"workspace not found", "arm", 404, odata("ResourceNotFound", "The Resource 'Microsoft.OperationalInsights/workspaces/x' under resource group 'y' was not found."), ClassNotFound, "ResourceNotFound", false},
	{"graph wrong audience", "graph", 401, odata("InvalidAuthenticationToken", "Access token validation failure. Invalid audience."), ClassNotConfigured, "InvalidAuthenticationToken", false},
	{"graph token expired", "graph", 401, odata("InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."), ClassTransient, "InvalidAuthenticationToken", false},
	{"arm wrong audience", "arm", 401, odata("InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource 'https://graph.microsoft.com'."), ClassNotConfigured, "InvalidAuthenticationTokenAudience", false},
	{"arm token expired", "arm", 401, odata("ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."), ClassTransient, "ExpiredAuthenticationToken", false},
	// Log Analytics.
	{"la insufficient access", "loganalytics", 403, `{"error":{"message":"The provided credentials have insufficient access to perform the requested operation","code":"InsufficientAccessError","correlationId":"c"}}`, ClassPermissionMissing, "InsufficientAccessError", true},
	{"la workspace not found", "loganalytics", 404, `{"error":{"message":"The workspace could not be found","code":"WorkspaceNotFoundError","correlationId":"c"}}`, ClassNotFound, "WorkspaceNotFoundError", false},
	{"la semantic error", "loganalytics", 400, `{"error":{"message":"The request had some invalid properties","code":"BadArgumentError","innererror":{"code":"SemanticError","innererror":{"code":"SEM0100"}}}}`, ClassBadRequest, "BadArgumentError", false},
	// Throttling and server errors (section 6).
	{"graph throttled", "graph", 429, odata("TooManyRequests", "Too many requests."), ClassThrottled, "TooManyRequests", false},
	{"graph unavailable", "graph", 503, odata("serviceNotAvailable", "The service is temporarily unavailable."), ClassTransient, "serviceNotAvailable", false},
	{"arm unavailable", "arm", 503, odata("ServiceUnavailable", "The service is temporarily unavailable."), ClassTransient, "ServiceUnavailable", false},
	{"graph general exception", "graph", 500, odata("generalException", "General exception while processing."), ClassTransient, "generalException", false},
	// Status fallbacks.
	{"429 without code", "cloudapps", 429, ``, ClassThrottled, "", false},
	{"401 without code", "cloudapps", 401, `{"detail":"Invalid token"}`, ClassPermissionMissing, "", true},
	{"403 unexplained", "cloudapps", 403, odata("AccessDenied", "Access denied."), ClassPermissionMissing, "AccessDenied", true},
	{"404", "defender", 404, odata("ResourceNotFound", "Resource not found"), ClassNotFound, "ResourceNotFound", false},
	{"409", "graph", 409, odata("Request_MultipleObjectsWithSameKeyValue", "Another object with the same value exists."), ClassConflict, "Request_MultipleObjectsWithSameKeyValue", false},
	{"502 html", "graph", 502, `<html>bad gateway</html>`, ClassTransient, "", false},
	{"400", "arm", 400, odata("MissingApiVersionParameter", "The api-version query parameter is required."), ClassBadRequest, "MissingApiVersionParameter", false},
	{"3xx", "graph", 302, ``, ClassUnknown, "", false},
}

func TestClassifyTable(t *testing.T) {
	covered := map[int]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.class == ClassThrottled {
				h.Set("Retry-After", "7")
			}
			e := FromResponse(tc.service, "op", tc.status, h, []byte(tc.body))
			if e.Class != tc.class || e.Code != tc.code || e.Lag != tc.lag || IsReplicationLag(e) != (tc.lag || tc.class == ClassNotReplicated) {
				t.Fatalf("got class %s code %q lag %v, want %s %q %v (%v)", e.Class, e.Code, e.Lag, tc.class, tc.code, tc.lag, e)
			}
			if e.Remedy == "" || e.Status != tc.status || e.Service != tc.service || e.Operation != "op" {
				t.Fatalf("incomplete: %+v", e)
			}
			if tc.class == ClassThrottled && e.RetryAfter != 7*time.Second {
				t.Fatalf("RetryAfter %v", e.RetryAfter)
			}
			if strings.Contains(e.Message, "Trace ID") || strings.HasPrefix(e.Message, "AADSTS") {
				t.Fatalf("message keeps Entra's trailer or prefix: %q", e.Message)
			}
		})
		var codes []string
		e := FromResponse(tc.service, "op", tc.status, nil, []byte(tc.body))
		if e.Code != "" {
			codes = []string{e.Code}
		}
		if i := match(tc.service, tc.status, codes, strings.ToLower(e.Message)); i >= 0 {
			covered[i] = true
		}
	}
	for i, r := range table {
		if !covered[i] {
			t.Errorf("table row %d (%s %q %v) has no test case", i, r.class, r.code, r.msg)
		}
	}
}

func TestClassifyAzidentityError(t *testing.T) {
	body := entra(7000215, "invalid_client", "Invalid client secret provided.")
	resp := &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
	err := fmt.Errorf("getting token: %w", &azidentity.AuthenticationFailedError{RawResponse: resp})
	e := Classify("entra", "token graph", err)
	if e.Class != ClassInvalidSecret || e.Code != "AADSTS7000215" || !e.Lag || e.Status != 401 || e.Message != "Invalid client secret provided." {
		t.Fatalf("%+v", e)
	}
	// The body stays readable for others.
	if b, _ := io.ReadAll(resp.Body); string(b) != body {
		t.Fatalf("body consumed: %q", b)
	}
	// Several error_codes: the one with a rule decides.
	resp = &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(
		`{"error":"invalid_client","error_description":"AADSTS650052: lacking.","error_codes":[9999,650052]}`))}
	if e := Classify("entra", "token defender", &azidentity.AuthenticationFailedError{RawResponse: resp}); e.Class != ClassNotLicensed || e.Code != "AADSTS650052" {
		t.Fatalf("%+v", e)
	}
	// No response (MSAL failed before answering).
	if e := Classify("entra", "token graph", &azidentity.AuthenticationFailedError{}); e.Class != ClassUnknown {
		t.Fatalf("%+v", e)
	}
}

func TestClassifyODataError(t *testing.T) {
	mk := func(status int, code, msg string) error {
		me := odataerrors.NewMainError()
		me.SetCode(&code)
		me.SetMessage(&msg)
		oe := odataerrors.NewODataError()
		oe.SetErrorEscaped(me)
		oe.ResponseStatusCode = status
		h := abs.NewResponseHeaders()
		h.Add("Retry-After", "3")
		oe.ResponseHeaders = h
		return fmt.Errorf("probe: %w", oe)
	}
	e := Classify("graph", "GET /security/alerts_v2", mk(403, "Forbidden", "Tenant is not onboarded to Microsoft 365 Defender. Missing license."))
	if e.Class != ClassNotLicensed || e.Code != "Forbidden" || e.Status != 403 {
		t.Fatalf("%+v", e)
	}
	e = Classify("graph", "GET /security/alerts_v2", mk(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."))
	if e.Class != ClassPermissionMissing {
		t.Fatalf("%+v", e)
	}
	e = Classify("graph", "GET /users", mk(429, "TooManyRequests", "Too many requests."))
	if e.Class != ClassThrottled || e.RetryAfter != 3*time.Second {
		t.Fatalf("%+v", e)
	}
	// A kiota ApiError (no OData body).
	ae := abs.NewApiError()
	ae.ResponseStatusCode = 503
	if e := Classify("graph", "GET /users", ae); e.Class != ClassTransient || e.Status != 503 {
		t.Fatalf("%+v", e)
	}
}

func TestClassifyTransportAndPassThrough(t *testing.T) {
	for _, tc := range []struct {
		err   error
		class Class
	}{
		{context.DeadlineExceeded, ClassTransient},
		{fmt.Errorf("x: %w", context.Canceled), ClassTransient},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, ClassTransient},
		{x509.UnknownAuthorityError{}, ClassNotConfigured},
		{errors.New("something odd"), ClassUnknown},
		{&ResponseError{Status: 403, Body: []byte(odata("InsufficientAccessError", "no"))}, ClassPermissionMissing},
	} {
		if e := Classify("graph", "op", tc.err); e.Class != tc.class || e.Remedy == "" {
			t.Errorf("%v: %+v", tc.err, e)
		}
	}
	in := &Error{Class: ClassThrottled, Code: "TooManyRequests", RetryAfter: time.Second}
	out := Classify("graph", "GET /users", fmt.Errorf("wrapped: %w", in))
	if out.Class != ClassThrottled || out.Service != "graph" || out.Operation != "GET /users" || out.RetryAfter != time.Second {
		t.Fatalf("%+v", out)
	}
	if Classify("graph", "op", nil) != nil {
		t.Fatal("nil error classified")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"2"}}, 2 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"0"}}, 0},
		{http.Header{"Retry-After": {now.Add(4 * time.Second).Format(http.TimeFormat)}}, 5 * time.Second},
		{http.Header{"Retry-After": {now.Add(-4 * time.Second).Format(http.TimeFormat)}}, 0},
		{http.Header{"X-Ms-Retry-After-Ms": {"1250"}, "Retry-After": {"1"}}, 1250 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"300"}}, 300 * time.Millisecond},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{nil, 0},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestErrorNeverHoldsRequest(t *testing.T) {
	// Entra echoes nothing of the request but the client ID; still, the
	// message is cut to Microsoft's first line and bounded.
	long := bytes.Repeat([]byte("a"), 2000)
	e := FromResponse("cloudapps", "op", 400, nil, long)
	if len(e.Message) > 510 {
		t.Fatalf("message not bounded: %d", len(e.Message))
	}
}

func TestDocListsEveryCode(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "microsoft-errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range table {
		if r.code != "" && !strings.Contains(doc, r.code) {
			t.Errorf("docs/microsoft-errors.md lacks %s", r.code)
		}
		for _, m := range r.msg {
			if !strings.Contains(doc, m) {
				t.Errorf("docs/microsoft-errors.md lacks the fragment %q", m)
			}
		}
		if !strings.Contains(doc, string(r.class)) {
			t.Errorf("docs/microsoft-errors.md lacks the class %s", r.class)
		}
	}
}

// The Azure SDK modules return *azcore.ResponseError; its buffered body is
// read like a plain answer's.
func TestClassifyAzcoreResponseError(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		class  Class
		code   string
		lag    bool
	}{
		{409, `{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists."}}`, ClassConflict, "RoleAssignmentExists", false},
		{400, `{"error":{"code":"PrincipalNotFound","message":"Principal x does not exist in the directory y."}}`, ClassNotReplicated, "PrincipalNotFound", true},
		{403, `{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization."}}`, ClassPermissionMissing, "AuthorizationFailed", true},
		{403, `{"error":{"message":"The provided credentials have insufficient access","code":"InsufficientAccessError","correlationId":"c"}}`, ClassPermissionMissing, "InsufficientAccessError", true},
		{429, `{"error":{"code":"TooManyRequests","message":"throttled"}}`, ClassThrottled, "TooManyRequests", false},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Retry-After": {"3"}}, Body: io.NopCloser(strings.NewReader(tc.body)),
			Request: httptest.NewRequest(http.MethodPut, "https://arm.example/x", nil)}
		err := fmt.Errorf("creating: %w", runtime.NewResponseError(resp))
		e := Classify("arm", "PUT roleAssignment", err)
		if e.Class != tc.class || e.Code != tc.code || IsReplicationLag(e) != tc.lag {
			t.Errorf("%d %s: got %s %s lag %v", tc.status, tc.code, e.Class, e.Code, IsReplicationLag(e))
		}
		if tc.class == ClassThrottled && e.RetryAfter != 3*time.Second {
			t.Errorf("RetryAfter %v", e.RetryAfter)
		}
	}
}

// IsReplicationLag is the one definition of lag: the table's Lag flag or
// the not-replicated class; nothing else (verify uses it as is).
func TestIsReplicationLag(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{Class: ClassNotReplicated}, true},
		{&Error{Class: ClassInvalidSecret, Lag: true}, true},
		{&Error{Class: ClassInvalidSecret}, false}, // AADSTS7000216: no secret sent is never lag
		{&Error{Class: ClassNotFound, Lag: true}, true},
		{&Error{Class: ClassNotFound}, false},
		{&Error{Class: ClassConflict}, false},
		{fmt.Errorf("wrapped: %w", &Error{Class: ClassPermissionMissing, Lag: true}), true},
		{errors.New("plain"), false},
		{nil, false},
	} {
		if got := IsReplicationLag(tc.err); got != tc.want {
			t.Errorf("IsReplicationLag(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Each class a token step can end in tells the customer admin or the
// operator what to do; the sign-in failures stop a check's other calls.
func TestSignInFailed(t *testing.T) {
	for _, tc := range []struct {
		code int
		stop bool
	}{
		{7000215, true}, {7000222, true}, {700016, true}, {90002, true}, {90072, true}, {7000229, true},
		{900382, true}, {900432, true}, {90038, true}, {70001, true}, {7000112, true}, {53003, true}, {530032, true},
		{700027, true}, {50001, false}, {500011, false}, {7000218, false}, {700024, false}, {90055, false}, {90033, false},
	} {
		e := FromResponse("entra", "token graph", 400, nil, []byte(entra(tc.code, "invalid_client", "x.")))
		if got := SignInFailed(fmt.Errorf("wrapped: %w", e)); got != tc.stop {
			t.Errorf("AADSTS%d (%s): SignInFailed %v, want %v", tc.code, e.Class, got, tc.stop)
		}
	}
	if SignInFailed(errors.New("plain")) || SignInFailed(nil) {
		t.Fatal("non-Microsoft error counted as a sign-in failure")
	}
}

// The remedies of the wrong-cloud and wrong-audience classes name what to
// change, so an operator need not guess.
func TestRemediesNameTheFix(t *testing.T) {
	for code, want := range map[string]string{
		entra(900382, "invalid_request", "Confidential Client is not supported in Cross Cloud request."): "tenant.cloud",
		entra(7000229, "invalid_client", "missing service principal"):                                    "admin consent",
		entra(90072, "invalid_grant", "User account does not exist in tenant"):                           "Directory (tenant) ID",
		odata("InvalidAuthenticationToken", "Access token validation failure. Invalid audience."):        "audiences",
	} {
		if e := FromResponse("entra", "op", 401, nil, []byte(code)); !strings.Contains(e.Remedy, want) {
			t.Errorf("%s: remedy %q lacks %q", e.Code, e.Remedy, want)
		}
	}
}

// TestWrongTenantRemedyGivesTheWayOut: a tenant's Entra ID and cloud
// cannot be changed in dzconnect, so the remedies of a tenant that does not
// exist (90002) or lives in another cloud say to recreate it (issue 10
// item 9d).
func TestWrongTenantRemedyGivesTheWayOut(t *testing.T) {
	for _, tc := range []struct {
		code int
		desc string
	}{
		{90002, "Tenant '00000000-0000-0000-0000-000000000001' not found."},
		{900382, "Confidential Client is not supported in Cross Cloud request."},
	} {
		e := FromResponse("entra", "op", 400, http.Header{}, []byte(entra(tc.code, "invalid_request", tc.desc)))
		if !strings.Contains(e.Remedy, "create") || !strings.Contains(e.Remedy, "tenant") {
			t.Errorf("AADSTS%d remedy %q does not say to create the tenant again", tc.code, e.Remedy)
		}
	}
}
