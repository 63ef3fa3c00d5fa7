package msftsim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
)

// handler serves the admin API under /_sim. It is unauthenticated: the
// simulator is for local and CI use only.
func (a *Admin) handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern, route string, f func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			observe.Annotate(r, "admin."+route, r.PathValue("tenant"))
			w.Header().Set("X-Msftsim-Route", "admin."+route) // which admin operation answered
			v, err := f(r)
			if err != nil {
				status := http.StatusBadRequest
				var de *directory.Error
				if errors.As(err, &de) {
					status = de.Status
				}
				adminJSON(w, status, map[string]any{"error": err.Error()})
				return
			}
			if v == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			adminJSON(w, http.StatusOK, v)
		})
	}
	h("GET /_sim/endpoints", "endpoints", func(*http.Request) (any, error) { return a.sim.Endpoints(), nil })
	h("GET /_sim/seeded", "seeded", func(*http.Request) (any, error) { return a.sim.Seeded(), nil })
	h("GET /_sim/tenants", "tenants.list", func(*http.Request) (any, error) { return a.Tenants(), nil })
	h("POST /_sim/tenants", "tenants.create", func(r *http.Request) (any, error) {
		var spec TenantSpec
		if err := decodeBody(r, &spec); err != nil {
			return nil, err
		}
		return a.AddTenant(spec)
	})
	h("GET /_sim/tenants/{tenant}", "tenants.get", func(r *http.Request) (any, error) {
		t, ok := a.Tenant(r.PathValue("tenant"))
		if !ok {
			return nil, &directory.Error{Status: 404, Code: "NotFound", Message: "tenant not found"}
		}
		return t, nil
	})
	h("POST /_sim/tenants/{tenant}/apps", "apps.create", func(r *http.Request) (any, error) {
		var req AppRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return a.CreateApp(r.PathValue("tenant"), req)
	})
	h("POST /_sim/provisioners", "provisioners.create", func(r *http.Request) (any, error) {
		var req struct {
			HomeTenant string `json:"homeTenant"`
			AppRequest
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return a.RegisterProvisioner(req.HomeTenant, req.AppRequest)
	})
	h("POST /_sim/tenants/{tenant}/consents", "consents.create", func(r *http.Request) (any, error) {
		var req struct {
			AppID      string      `json:"appId"`
			Roles      []string    `json:"roles"`
			AzureRoles []AzureRole `json:"azureRoles"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		sp, err := a.Consent(r.PathValue("tenant"), req.AppID, req.Roles, req.AzureRoles...)
		return map[string]string{"servicePrincipalObjectId": sp}, err
	})
	h("POST /_sim/tenants/{tenant}/workspaces", "workspaces.create", func(r *http.Request) (any, error) {
		var ws Workspace
		if err := decodeBody(r, &ws); err != nil {
			return nil, err
		}
		return a.AddWorkspace(r.PathValue("tenant"), ws)
	})
	h("POST /_sim/tenants/{tenant}/azureRoleAssignments", "azureRoles.create", func(r *http.Request) (any, error) {
		var req struct {
			AzureRole
			PrincipalID string `json:"principalId"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return nil, a.GrantAzureRole(r.PathValue("tenant"), req.AzureRole, req.PrincipalID)
	})
	h("PUT /_sim/tenants/{tenant}/licences", "licences.set", func(r *http.Request) (any, error) {
		var lic map[string]string
		if err := decodeBody(r, &lic); err != nil {
			return nil, err
		}
		return nil, a.SetLicences(r.PathValue("tenant"), lic)
	})
	h("PUT /_sim/tenants/{tenant}/policy", "policy.set", func(r *http.Request) (any, error) {
		var p PolicySpec
		if err := decodeBody(r, &p); err != nil {
			return nil, err
		}
		return nil, a.SetPolicy(r.PathValue("tenant"), p)
	})
	h("POST /_sim/tenants/{tenant}/appManagementPolicies", "appPolicies.add", func(r *http.Request) (any, error) {
		var p AppPolicySpec
		if err := decodeBody(r, &p); err != nil {
			return nil, err
		}
		id, err := a.AddAppPolicy(r.PathValue("tenant"), p)
		return map[string]string{"id": id}, err
	})
	h("PUT /_sim/tenants/{tenant}/appManagementPolicies/{id}/appliesTo/{app}", "appPolicies.assign", func(r *http.Request) (any, error) {
		return nil, a.AssignAppPolicy(r.PathValue("tenant"), r.PathValue("id"), r.PathValue("app"))
	})
	h("PUT /_sim/tenants/{tenant}/apps/{appId}/enabled", "apps.enabled", func(r *http.Request) (any, error) {
		var req struct {
			Enabled bool `json:"enabled"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return nil, a.SetAppEnabled(r.PathValue("tenant"), r.PathValue("appId"), req.Enabled)
	})
	h("DELETE /_sim/tenants/{tenant}/apps/{appId}/servicePrincipal", "apps.servicePrincipal.delete", func(r *http.Request) (any, error) {
		return nil, a.DeleteServicePrincipal(r.PathValue("tenant"), r.PathValue("appId"))
	})
	h("PUT /_sim/tenants/{tenant}/conditionalAccess", "conditionalAccess.set", func(r *http.Request) (any, error) {
		var req struct {
			AppID   string `json:"appId"`
			Blocked bool   `json:"blocked"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return nil, a.BlockConditionalAccess(r.PathValue("tenant"), req.AppID, req.Blocked)
	})
	h("PUT /_sim/tenants/{tenant}/removed", "tenants.removed", func(r *http.Request) (any, error) {
		var req struct {
			Removed bool `json:"removed"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return nil, a.SetTenantRemoved(r.PathValue("tenant"), req.Removed)
	})
	h("PUT /_sim/tenants/{tenant}/adminConsent", "adminConsent.set", func(r *http.Request) (any, error) {
		var req struct {
			Deny bool `json:"deny"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return nil, a.DenyAdminConsent(r.PathValue("tenant"), req.Deny)
	})
	h("GET /_sim/tenants/{tenant}/deletedItems", "deletedItems.list", func(r *http.Request) (any, error) {
		items, err := a.DeletedItems(r.PathValue("tenant"))
		if items == nil {
			items = []DeletedItem{}
		}
		return items, err
	})
	h("PUT /_sim/softDelete", "softDelete.set", func(r *http.Request) (any, error) {
		var req struct {
			ReleasesUniqueName bool `json:"releasesUniqueName"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		a.SetSoftDeleteReleasesUniqueName(req.ReleasesUniqueName)
		return nil, nil
	})
	h("DELETE /_sim/tenants/{tenant}/apps/{appId}", "apps.delete", func(r *http.Request) (any, error) {
		return nil, a.DeleteApp(r.PathValue("tenant"), r.PathValue("appId"))
	})
	h("PUT /_sim/tenants/{tenant}/apps/{appId}/redirectUris", "apps.redirectUris", func(r *http.Request) (any, error) {
		var req struct {
			RedirectURIs []string `json:"redirectUris"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return nil, a.SetRedirectURIs(r.PathValue("tenant"), r.PathValue("appId"), req.RedirectURIs)
	})
	h("POST /_sim/tenants/{tenant}/apps/{appId}/passwords", "apps.passwords.add", func(r *http.Request) (any, error) {
		secret, keyID, err := a.AddAppSecret(r.PathValue("tenant"), r.PathValue("appId"))
		if err != nil {
			return nil, err
		}
		return map[string]string{"keyId": keyID, "secretText": secret}, nil
	})
	h("DELETE /_sim/tenants/{tenant}/apps/{appId}/passwords/{keyId}", "apps.passwords.remove", func(r *http.Request) (any, error) {
		return nil, a.RemoveAppSecret(r.PathValue("tenant"), r.PathValue("appId"), r.PathValue("keyId"))
	})
	h("DELETE /_sim/tenants/{tenant}/apps/{appId}/keys/{keyId}", "apps.keys.remove", func(r *http.Request) (any, error) {
		return nil, a.RemoveAppKey(r.PathValue("tenant"), r.PathValue("appId"), r.PathValue("keyId"))
	})
	h("DELETE /_sim/tenants/{tenant}/azureRoleAssignments", "azureRoles.delete", func(r *http.Request) (any, error) {
		var req struct {
			AzureRole
			PrincipalID string `json:"principalId"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		n, err := a.RevokeAzureRole(r.PathValue("tenant"), req.AzureRole, req.PrincipalID)
		if err != nil {
			return nil, err
		}
		return map[string]int{"removed": n}, nil
	})
	h("POST /_sim/tenants/{tenant}/groups", "groups.create", func(r *http.Request) (any, error) {
		var g Group
		if err := decodeBody(r, &g); err != nil {
			return nil, err
		}
		return a.AddGroup(r.PathValue("tenant"), g)
	})
	h("POST /_sim/tenants/{tenant}/users", "users.create", func(r *http.Request) (any, error) {
		var u User
		if err := decodeBody(r, &u); err != nil {
			return nil, err
		}
		return a.AddUser(r.PathValue("tenant"), u)
	})
	h("GET /_sim/tenants/{tenant}/faults", "tenantFaults.get", func(r *http.Request) (any, error) {
		if _, ok := a.Tenant(r.PathValue("tenant")); !ok {
			return nil, &directory.Error{Status: 404, Code: "NotFound", Message: "tenant not found"}
		}
		return a.TenantFaults(r.PathValue("tenant")), nil
	})
	h("PUT /_sim/tenants/{tenant}/faults", "tenantFaults.set", func(r *http.Request) (any, error) {
		var sc faults.Scope
		if err := decodeBody(r, &sc); err != nil {
			return nil, err
		}
		if err := a.SetTenantFaults(r.PathValue("tenant"), sc); err != nil {
			return nil, err
		}
		return a.TenantFaults(r.PathValue("tenant")), nil
	})
	h("PATCH /_sim/tenants/{tenant}/faults", "tenantFaults.patch", func(r *http.Request) (any, error) {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		return a.PatchTenantFaults(r.PathValue("tenant"), b)
	})
	h("DELETE /_sim/tenants/{tenant}/faults", "tenantFaults.delete", func(r *http.Request) (any, error) {
		return nil, a.SetTenantFaults(r.PathValue("tenant"), faults.Scope{})
	})
	h("GET /_sim/tenants/{tenant}/counters", "tenantCounters", func(r *http.Request) (any, error) {
		if _, ok := a.Tenant(r.PathValue("tenant")); !ok {
			return nil, &directory.Error{Status: 404, Code: "NotFound", Message: "tenant not found"}
		}
		return a.TenantCounters(r.PathValue("tenant")), nil
	})
	h("GET /_sim/faults", "faults.get", func(*http.Request) (any, error) { return a.Faults(), nil })
	h("PUT /_sim/faults", "faults.set", func(r *http.Request) (any, error) {
		var c faults.Config
		if p := r.URL.Query().Get("profile"); p != "" {
			pc, err := faults.Profile(p)
			if err != nil {
				return nil, err
			}
			c = pc
		} else if err := decodeBody(r, &c); err != nil {
			return nil, err
		}
		a.SetFaults(c)
		return a.Faults(), nil
	})
	h("GET /_sim/clock", "clock.get", func(*http.Request) (any, error) { return map[string]any{"now": a.Now()}, nil })
	h("POST /_sim/clock/advance", "clock.advance", func(r *http.Request) (any, error) {
		var req struct {
			By faults.Duration `json:"by"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return map[string]any{"now": a.AdvanceClock(time.Duration(req.By))}, nil
	})
	h("PUT /_sim/clock", "clock.set", func(r *http.Request) (any, error) {
		var req struct {
			Now time.Time `json:"now"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		a.SetClock(req.Now)
		return map[string]any{"now": a.Now()}, nil
	})
	h("GET /_sim/counters", "counters", func(*http.Request) (any, error) {
		return map[string]any{"routes": a.Counters(), "earlyRetries": a.EarlyRetries()}, nil
	})
	h("GET /_sim/requests", "requests", func(r *http.Request) (any, error) {
		n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		return map[string]any{"requests": a.Requests(n)}, nil
	})
	h("GET /_sim/early-retries", "earlyRetries", func(*http.Request) (any, error) {
		return map[string]any{"total": a.TotalEarlyRetries(), "byRoute": a.EarlyRetries(), "clientsByRoute": a.EarlyRetryClients()}, nil
	})
	h("POST /_sim/reset-counters", "counters.reset", func(*http.Request) (any, error) {
		a.ResetCounters()
		return nil, nil
	})
	return mux
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("invalid JSON body: " + err.Error())
	}
	return nil
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
