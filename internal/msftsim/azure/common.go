// Package azure simulates the Azure Resource Manager calls dzconnect makes
// (Log Analytics workspace GET, Microsoft.Authorization role assignments),
// the Log Analytics query API and a minimal Defender for Endpoint API,
// authorized by Azure RBAC role assignments and token roles.
package azure

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/entra"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// Server serves the ARM, Log Analytics and Defender prefixes.
type Server struct {
	Dir      *directory.Directory
	Faults   *faults.Injector
	Verifier *entra.Verifier
	BaseURL  func() string
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorShape writes one API family's error body.
type errorShape func(w http.ResponseWriter, status int, code, msg string)

// authorize verifies the bearer token for resourceAppID and applies faults.
// It returns nil after answering the request itself.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, route, resourceAppID string, fail errorShape) *entra.Claims {
	info := observe.InfoFrom(r.Context())
	info.Route = route
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+s.BaseURL()+`/", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
		fail(w, 401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return nil
	}
	cl, err := s.Verifier.Verify(raw, s.Dir.Clock().Now())
	switch {
	case errors.Is(err, entra.ErrExpired):
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+s.BaseURL()+`/", error="invalid_token", error_description="The access token expiry UTC time is earlier than current UTC time."`)
		fail(w, 401, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
		return nil
	case err != nil:
		fail(w, 401, "InvalidAuthenticationToken", "The access token is invalid.")
		return nil
	}
	if app, _ := directory.ResourceAppIDForAudience(cl.Aud); app != resourceAppID {
		fail(w, 401, "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource '"+cl.Aud+"'.")
		return nil
	}
	if !s.Dir.TenantExists(cl.Tid) {
		fail(w, 401, "InvalidAuthenticationToken", "The access token is invalid.")
		return nil
	}
	info.Tenant, info.Client = cl.Tid, cl.AppID
	if d := s.Faults.Apply(r.Context(), route, cl.Tid, cl.AppID); d.Status != 0 {
		info.Fault = d.Kind
		if d.Status == 429 {
			w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
			fail(w, 429, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type. Please retry after "+strconv.Itoa(d.RetryAfter)+" seconds.")
			return nil
		}
		fail(w, d.Status, "ServiceUnavailable", "The service is temporarily unavailable. Please retry later.")
		return nil
	}
	return cl
}
