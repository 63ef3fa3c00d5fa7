package directory

import (
	"encoding/json"
	"strings"
)

type resourceAccess struct {
	ResourceAppID  string `json:"resourceAppId"`
	ResourceAccess []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"resourceAccess"`
}

// SetRequestedRoles records roles ("Value" or "resource/Value") as the
// app's requiredResourceAccess: the static permissions admin consent grants.
func (d *Directory) SetRequestedRoles(tenant, appID string, roles []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	a := t.appsByAppID[strings.ToLower(appID)]
	if a == nil {
		return errf(404, "NotFound", "application %s not found", appID)
	}
	byRes := map[string]*resourceAccess{}
	var order []string
	for _, spec := range roles {
		res, role, err := resolveRoleLocked(t, spec)
		if err != nil {
			return err
		}
		ra := byRes[res.AppID]
		if ra == nil {
			ra = &resourceAccess{ResourceAppID: res.AppID}
			byRes[res.AppID] = ra
			order = append(order, res.AppID)
		}
		ra.ResourceAccess = append(ra.ResourceAccess, struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}{role.ID, "Role"})
	}
	out := make([]*resourceAccess, 0, len(order))
	for _, id := range order {
		out = append(out, byRes[id])
	}
	b, _ := json.Marshal(out)
	a.Extra["requiredResourceAccess"] = b
	return nil
}

// SetConsentDenied makes admin consent in tenant fail as if the admin
// declined (AADSTS65004), or approve again.
func (d *Directory) SetConsentDenied(tenant string, denied bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return errf(404, "NotFound", "tenant %s not found", tenant)
	}
	t.consentDenied = denied
	return nil
}

// AdminConsent is an administrator of tenant approving appID: its service
// principal is created if missing and every application permission in the
// app's requiredResourceAccess is granted. consentLag delays the grants in
// tokens. redirectURI must be registered on the app when it has any.
func (d *Directory) AdminConsent(tenant, appID, redirectURI string, consentLag Lag) (string, *AuthError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return "", authErr(400, "invalid_tenant", 90002, "Tenant '%s' not found.", tenant)
	}
	appID = strings.ToLower(appID)
	a := d.homeApp(t, appID)
	if a == nil {
		return "", authErr(400, "unauthorized_client", 700016,
			"Application with identifier '%s' was not found in the directory '%s'.", appID, t.DisplayName)
	}
	if raw, ok := a.Extra["web"]; ok && redirectURI != "" {
		var web struct {
			RedirectURIs []string `json:"redirectUris"`
		}
		if json.Unmarshal(raw, &web) == nil && len(web.RedirectURIs) > 0 && !containsFold(web.RedirectURIs, redirectURI) {
			return "", authErr(400, "invalid_request", 50011,
				"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", redirectURI, appID)
		}
	}
	if t.consentDenied {
		return "", authErr(400, "access_denied", 65004, "User declined to consent to access the app.")
	}
	var req []resourceAccess
	if raw, ok := a.Extra["requiredResourceAccess"]; ok {
		_ = json.Unmarshal(raw, &req)
	}
	type grant struct {
		res  *ServicePrincipal
		role string
	}
	var grants []grant
	for _, r := range req {
		res := t.spsByAppID[strings.ToLower(r.ResourceAppID)]
		if res == nil {
			return "", authErr(400, "invalid_client", 650052,
				"The app needs access to a service ('%s') that your organization '%s' has not subscribed to or enabled.", r.ResourceAppID, t.ID)
		}
		for _, ra := range r.ResourceAccess {
			if strings.EqualFold(ra.Type, "Role") {
				grants = append(grants, grant{res, strings.ToLower(ra.ID)})
			}
		}
	}
	now := d.clock.Now()
	sp := t.spsByAppID[appID]
	if sp == nil {
		sp = d.newAppSP(t, a, now, Lag{})
	}
	for _, g := range grants {
		exists := false
		for _, x := range t.assignments {
			if x.PrincipalID == sp.ID && x.ResourceID == g.res.ID && x.AppRoleID == g.role {
				exists = true
			}
		}
		if exists {
			continue
		}
		as := &AppRoleAssignment{ID: d.newAssignmentID(), AppRoleID: g.role, PrincipalID: sp.ID, PrincipalType: "ServicePrincipal",
			PrincipalDisplayName: sp.DisplayName, ResourceID: g.res.ID, ResourceDisplayName: g.res.DisplayName, Created: now,
			tokenVis: t.newVisibility(now, consentLag)}
		t.assignments[as.ID] = as
	}
	return sp.ID, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
