package microsoft

import (
	"net/http"
	"net/url"
	"testing"
)

// TestAPIOf: the API a request goes to is named by the longest configured
// endpoint prefix, so a simulator serving every API on one host (msftsim)
// and Microsoft's own hosts are both named right.
func TestAPIOf(t *testing.T) {
	clouds := DefaultClouds()
	clouds["sim"] = Endpoints{Authority: "https://127.0.0.1:8443/", Graph: "https://127.0.0.1:8443/v1.0", ARM: "https://127.0.0.1:8443/arm",
		LogAnalytics: "https://127.0.0.1:8443/loganalytics", Defender: "https://127.0.0.1:8443/defender"}
	p := apiPrefixes(clouds)
	for raw, want := range map[string]string{
		"https://login.microsoftonline.com/tid/oauth2/v2.0/token": "entra",
		"https://graph.microsoft.com/v1.0/security/alerts_v2":     "graph",
		"https://management.azure.com/subscriptions/x":            "arm",
		"https://api.loganalytics.io/v1/workspaces/w/query":       "loganalytics",
		"https://127.0.0.1:8443/tid/oauth2/v2.0/token":            "entra",
		"https://127.0.0.1:8443/v1.0/users":                       "graph",
		"https://127.0.0.1:8443/arm/subscriptions/x":              "arm",
		"https://127.0.0.1:8443/defender/api/machines":            "defender",
		"https://example.com/x":                                   "microsoft",
	} {
		u, _ := url.Parse(raw)
		if got := apiOf(p, u); got != want {
			t.Errorf("apiOf(%s) = %s, want %s", raw, got, want)
		}
	}
}

// TestClientRequestID: a request without one gets a client-request-id,
// once (the caller's request is not changed); one with either header
// keeps it.
func TestClientRequestID(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://graph.microsoft.com/v1.0/users", nil)
	r := withClientRequestID(req)
	if r.Header.Get(clientRequestIDHeader) == "" || req.Header.Get(clientRequestIDHeader) != "" {
		t.Fatalf("set %q, caller's %q", r.Header.Get(clientRequestIDHeader), req.Header.Get(clientRequestIDHeader))
	}
	if again := withClientRequestID(r); again != r {
		t.Fatal("a request with a client-request-id was copied")
	}
	arm, _ := http.NewRequest(http.MethodGet, "https://management.azure.com/x", nil)
	arm.Header.Set("x-ms-client-request-id", "abc")
	if withClientRequestID(arm) != arm {
		t.Fatal("an ARM request with x-ms-client-request-id got another")
	}
}
