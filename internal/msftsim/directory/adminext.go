package directory

import (
	"encoding/json"
	"strings"
)

// SetRedirectURIs sets application appID's web.redirectUris in tenant
// (its home tenant): the admin-consent link then refuses other redirect
// URIs (AADSTS50011), as Entra does.
func (d *Directory) SetRedirectURIs(tenant, appID string, uris []string) error {
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
	if uris == nil {
		uris = []string{}
	}
	web := map[string]any{"homePageUrl": nil, "logoutUrl": nil, "redirectUris": uris,
		"implicitGrantSettings": map[string]any{"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}}
	b, err := json.Marshal(web)
	if err != nil {
		return err
	}
	a.Extra["web"] = b
	return nil
}
