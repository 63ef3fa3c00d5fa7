package entra

import (
	"net/http"
	"net/url"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// RouteAdminConsent is the admin-consent endpoint's route name.
const RouteAdminConsent = "entra.adminConsent"

// adminConsent simulates an administrator who signs in and approves (or,
// when the tenant is set to deny, declines) the admin-consent link:
// GET /{tenant}/v2.0/adminconsent?client_id=&scope=&redirect_uri=&state=.
// It answers with the redirect Entra sends the browser back with. Errors that
// Entra shows on its own page (unknown tenant or app, unregistered redirect
// URI) come back as the Entra error JSON with no redirect.
func (s *Server) adminConsent(w http.ResponseWriter, r *http.Request) {
	seg := r.PathValue("tenant")
	info := observe.Annotate(r, RouteAdminConsent, seg)
	q := r.URL.Query()
	clientID, redirect, state := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state")
	info.Client = clientID
	target, err := url.Parse(redirect)
	if redirect == "" || err != nil || !target.IsAbs() {
		s.writeError(w, r, &directory.AuthError{Status: 400, OAuthError: "invalid_request", Code: 900144,
			Description: "The request body must contain the following parameter: 'redirect_uri'."})
		return
	}
	tenantID := seg
	if t, ok := s.Dir.LookupTenant(seg); ok {
		tenantID = t.ID
	}
	lag := s.Faults.LagFor("consent", tenantID, RouteAdminConsent)
	_, aerr := s.Dir.AdminConsent(seg, clientID, redirect, directory.Lag{Reads: lag.Reads, For: time.Duration(lag.For)})
	back := target.Query()
	switch {
	case aerr == nil:
		back.Set("admin_consent", "True")
		back.Set("tenant", tenantID)
		back.Set("scope", q.Get("scope"))
	case aerr.Code == 65004 || aerr.Code == 650052:
		back.Set("error", aerr.OAuthError)
		if aerr.Code == 65004 {
			back.Set("error_subcode", "cancel")
		}
		back.Set("error_description", aerr.Error())
		back.Set("admin_consent", "False")
	default:
		s.writeError(w, r, aerr)
		return
	}
	if state != "" {
		back.Set("state", state)
	}
	target.RawQuery = back.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}
