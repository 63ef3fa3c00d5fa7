// Package entra simulates the Microsoft Entra ID (login) endpoints MSAL and
// azidentity use: OpenID metadata, JWKS, instance discovery and the v2.0
// token endpoint for client credentials (secret or certificate assertion),
// with errors in Entra's shape (AADSTS codes in error_codes).
package entra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// TokenLifetime is how long issued access tokens live (Entra: 60-90 min).
const TokenLifetime = 3599 * time.Second

// Server serves the login authority.
type Server struct {
	Dir    *directory.Directory
	Faults *faults.Injector
	Signer *Signer
	// BaseURL returns the simulator's public base URL, e.g. https://127.0.0.1:8443.
	BaseURL func() string
	// ReuseWindow, when positive, answers identical token requests (same
	// tenant, client, resource, roles and credential type) issued within
	// the window with the same token instead of signing a new one. Off by
	// default: Entra signs every token; load tests may turn it on.
	ReuseWindow time.Duration

	reuse sync.Map // reuseKey -> *issued
}

type issued struct {
	token string
	at    time.Time
	exp   time.Time
}

// base is the URL the client reached the simulator at: metadata, issuer and
// links follow the request's host, so "localhost" and "127.0.0.1" both pass
// MSAL's issuer-matches-authority check.
func (s *Server) base(r *http.Request) string {
	if r.Host != "" {
		return "https://" + r.Host
	}
	return s.BaseURL()
}

// issuer is the token issuer for a tenant ID as seen by this request.
func (s *Server) issuer(r *http.Request, tenantID string) string {
	return s.base(r) + "/" + tenantID + "/v2.0"
}

// Handler routes the authority paths: /{tenant}/v2.0/.well-known/openid-configuration,
// /{tenant}/discovery/v2.0/keys, /common/discovery/instance, /{tenant}/oauth2/v2.0/token.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /common/discovery/instance", s.instanceDiscovery)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfig)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.keys)
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.keys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("GET /{tenant}/v2.0/adminconsent", s.adminConsent)
	mux.HandleFunc("GET /{tenant}/adminconsent", s.adminConsent)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		observe.Annotate(r, "entra.unknown", "")
		s.writeError(w, r, &directory.AuthError{Status: 404, OAuthError: "invalid_request", Code: 900561,
			Description: "The endpoint only accepts POST requests. Received a " + r.Method + " request."})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	observe.Annotate(r, "entra.instanceDiscovery", "")
	authz := r.URL.Query().Get("authorization_endpoint")
	tenant := "common"
	if i := strings.Index(authz, "://"); i >= 0 {
		if p := strings.Split(authz[i+3:], "/"); len(p) > 1 && p[1] != "" {
			tenant = p[1]
		}
	}
	host := strings.TrimPrefix(s.base(r), "https://")
	writeJSON(w, 200, map[string]any{
		"tenant_discovery_endpoint": s.base(r) + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []map[string]any{{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
	})
}

// resolveTenant maps the path segment to a tenant ID; common and
// organizations answer with the "{tenantid}" template, as Entra does.
func (s *Server) resolveTenant(w http.ResponseWriter, r *http.Request, seg string) (string, bool) {
	switch strings.ToLower(seg) {
	case "common", "organizations", "consumers":
		return "{tenantid}", true
	}
	if !directory.ValidTenantIdentifier(seg) {
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_tenant", Code: 900023,
			Description: fmt.Sprintf("Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", seg)})
		return "", false
	}
	t, ok := s.Dir.LookupTenant(seg)
	if !ok {
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_tenant", Code: 90002,
			Description: fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "+
				"Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", seg)})
		return "", false
	}
	return t.ID, true
}

func (s *Server) openIDConfig(w http.ResponseWriter, r *http.Request) {
	seg := r.PathValue("tenant")
	observe.Annotate(r, "entra.openidConfiguration", seg)
	tid, ok := s.resolveTenant(w, r, seg)
	if !ok {
		return
	}
	root := s.base(r)
	base := root + "/" + seg
	writeJSON(w, 200, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              root + "/" + seg + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                s.issuer(r, tid),
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     root + "/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
			"c_hash", "email"},
		"kerberos_endpoint":        base + "/kerberos",
		"tenant_region_scope":      "NA",
		"cloud_instance_name":      "microsoftonline.com",
		"cloud_graph_host_name":    "graph.windows.net",
		"msgraph_host":             "graph.microsoft.com",
		"rbac_url":                 "https://pas.windows.net",
		"tenant_region_sub_scope":  nil,
		"msftsim_graph_base_url":   root + "/v1.0",
		"msftsim_token_lifetime_s": int(TokenLifetime / time.Second),
	})
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	observe.Annotate(r, "entra.keys", r.PathValue("tenant"))
	writeJSON(w, 200, map[string]any{"keys": []any{s.Signer.JWK()}})
}

// writeError answers in Entra's error shape.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *directory.AuthError) {
	now := s.Dir.Clock().Now()
	trace := s.Dir.NewID()
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = s.Dir.NewID()
	}
	ts := now.Format("2006-01-02 15:04:05Z")
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.Code, e.Description, trace, corr, ts)
	if e.Status == 401 {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+r.Host+`"`)
	}
	w.Header().Set("x-ms-request-id", trace)
	w.Header().Set("client-request-id", corr)
	writeJSON(w, e.Status, map[string]any{
		"error":             e.OAuthError,
		"error_description": desc,
		"error_codes":       []int{e.Code},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         s.base(r) + "/error?code=" + fmt.Sprint(e.Code),
	})
}
