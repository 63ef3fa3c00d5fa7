package graph

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

func (c *call) appKey() directory.AppKey {
	if c.key != nil {
		return directory.AppKey{ID: c.key["id"], AppID: c.key["appId"], UniqueName: c.key["uniqueName"]}
	}
	return directory.AppKey{ID: c.id()}
}

func (c *call) lag(kind, route string) directory.Lag {
	l := c.s.Faults.LagFor(kind, c.tenant, route)
	return directory.Lag{Reads: l.Reads, For: time.Duration(l.For)}
}

func (s *Server) appJSON(a directory.Application, domain string) map[string]any {
	pw := make([]any, 0, len(a.Passwords))
	for _, p := range a.Passwords {
		pw = append(pw, map[string]any{"customKeyIdentifier": nil, "displayName": nilIfEmpty(p.DisplayName), "endDateTime": graphTime(p.End),
			"hint": p.Hint, "keyId": p.KeyID, "secretText": nil, "startDateTime": graphTime(p.Start)})
	}
	keys := make([]any, 0, len(a.Keys))
	for _, k := range a.Keys {
		keys = append(keys, map[string]any{"customKeyIdentifier": base64.StdEncoding.EncodeToString(k.CustomKeyIdentifier),
			"displayName": k.DisplayName, "endDateTime": graphTime(k.End), "key": nil, "keyId": k.KeyID,
			"startDateTime": graphTime(k.Start), "type": k.Type, "usage": k.Usage})
	}
	m := map[string]any{
		"id": a.ID, "deletedDateTime": nil, "appId": a.AppID, "applicationTemplateId": nil, "disabledByMicrosoftStatus": nil,
		"createdDateTime": graphTime(a.Created), "displayName": a.DisplayName, "description": nil, "groupMembershipClaims": nil,
		"identifierUris": []any{}, "isDeviceOnlyAuthSupported": nil, "isFallbackPublicClient": nil, "notes": nil,
		"publisherDomain": domain, "signInAudience": a.SignInAudience, "tags": []any{},
		"tokenEncryptionKeyId": nil, "uniqueName": nilIfEmpty(a.UniqueName), "defaultRedirectUri": nil, "addIns": []any{},
		"appRoles": []any{}, "keyCredentials": keys, "passwordCredentials": pw, "requiredResourceAccess": []any{},
		"web": map[string]any{"homePageUrl": nil, "logoutUrl": nil, "redirectUris": []any{},
			"implicitGrantSettings": map[string]any{"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
		// The defaults Graph returns for a new application [G-app-tutorial].
		"certification": nil, "optionalClaims": nil, "serviceManagementReference": nil,
		"api": map[string]any{"acceptMappedClaims": nil, "knownClientApplications": []any{}, "requestedAccessTokenVersion": nil,
			"oauth2PermissionScopes": []any{}, "preAuthorizedApplications": []any{}},
		"info":                    map[string]any{"logoUrl": nil, "marketingUrl": nil, "privacyStatementUrl": nil, "supportUrl": nil, "termsOfServiceUrl": nil},
		"parentalControlSettings": map[string]any{"countriesBlockedForMinors": []any{}, "legalAgeGroupRule": "Allow"},
		"publicClient":            map[string]any{"redirectUris": []any{}},
		"spa":                     map[string]any{"redirectUris": []any{}},
		"verifiedPublisher":       map[string]any{"displayName": nil, "verifiedPublisherId": nil, "addedDateTime": nil},
	}
	for k, v := range a.Extra {
		m[k] = v
	}
	return m
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c *call) domain() string {
	if t, ok := c.s.Dir.LookupTenant(c.tenant); ok {
		return t.DefaultDomain
	}
	return ""
}

// appInput reads an application body.
func (c *call) appInput() (directory.AppInput, bool) {
	var raw map[string]json.RawMessage
	if !c.readBody(&raw) {
		return directory.AppInput{}, false
	}
	in := directory.AppInput{Extra: map[string]json.RawMessage{}}
	str := func(k string) *string {
		v, ok := raw[k]
		if !ok {
			return nil
		}
		var s string
		_ = json.Unmarshal(v, &s)
		return &s
	}
	in.DisplayName, in.UniqueName, in.SignInAudience = str("displayName"), str("uniqueName"), str("signInAudience")
	if v, ok := raw["keyCredentials"]; ok {
		var kcs []struct {
			DisplayName string     `json:"displayName"`
			Key         string     `json:"key"`
			KeyID       string     `json:"keyId"`
			Type        string     `json:"type"`
			Usage       string     `json:"usage"`
			Start       *time.Time `json:"startDateTime"`
			End         *time.Time `json:"endDateTime"`
		}
		if err := json.Unmarshal(v, &kcs); err != nil {
			c.fail(400, "BadRequest", "Invalid value for property 'keyCredentials'.")
			return in, false
		}
		list := make([]directory.KeyCredentialInput, 0, len(kcs))
		for _, k := range kcs {
			ki := directory.KeyCredentialInput{KeyID: k.KeyID, DisplayName: k.DisplayName, Type: k.Type, Usage: k.Usage, Start: k.Start, End: k.End}
			if k.Key != "" {
				der, err := base64.StdEncoding.DecodeString(k.Key)
				if err != nil {
					c.fail(400, "BadRequest", "Invalid value for property 'key' of resource 'KeyCredential'.")
					return in, false
				}
				ki.Key = der
			}
			list = append(list, ki)
		}
		in.KeyCredentials = &list
	}
	for k, v := range raw {
		switch k {
		case "displayName", "uniqueName", "signInAudience", "keyCredentials", "id", "appId", "@odata.type", "passwordCredentials", "createdDateTime":
		default:
			in.Extra[k] = v
		}
	}
	return in, true
}

func (s *Server) createApplication(c *call) {
	in, ok := c.appInput()
	if !ok {
		return
	}
	a, err := s.Dir.CreateApplication(c.tenant, in, c.caller(), c.lag("object", "graph.applications.create"))
	if err != nil {
		c.failErr(err)
		return
	}
	c.entity(201, "applications/$entity", s.appJSON(a, c.domain()))
}

func (s *Server) listApplications(c *call) {
	q, ok := c.directoryQuery("microsoft.graph.application", []string{"appId", "displayName", "uniqueName", "id"},
		nil, []string{"displayName", "createdDateTime"})
	if !ok {
		return
	}
	apps, ok := s.queryApplications(c, q)
	if !ok {
		return
	}
	dom := c.domain()
	c.pageOf("applications", len(apps), func(i int) map[string]any { return s.appJSON(apps[i], dom) })
}

// countApplications is GET /applications/$count.
func (s *Server) countApplications(c *call) {
	q, ok := c.directoryQuery("microsoft.graph.application", []string{"appId", "displayName", "uniqueName", "id"}, nil, nil)
	if !ok {
		return
	}
	if apps, ok := s.queryApplications(c, q); ok {
		c.countSegment(len(apps))
	}
}

func (s *Server) queryApplications(c *call, q dirQuery) ([]directory.Application, bool) {
	apps, err := s.Dir.ListApplications(c.tenant, func(a *directory.Application) bool {
		return matches(q.clauses, func(p string) string { return appProp(*a, p) })
	})
	if err != nil {
		c.failErr(err)
		return nil, false
	}
	sortItems(q, apps, appProp)
	return apps, true
}

func appProp(a directory.Application, p string) string {
	switch p {
	case "appId":
		return a.AppID
	case "displayName":
		return a.DisplayName
	case "uniqueName":
		return a.UniqueName
	case "createdDateTime":
		return a.Created.UTC().Format(time.RFC3339Nano)
	}
	return a.ID
}

func (s *Server) getApplication(c *call) {
	a, err := s.Dir.GetApplication(c.tenant, c.appKey())
	if err != nil {
		c.failErr(err)
		return
	}
	c.entity(200, "applications/$entity", s.appJSON(a, c.domain()))
}

func (s *Server) updateApplication(c *call) {
	in, ok := c.appInput()
	if !ok {
		return
	}
	if in.KeyCredentials != nil && c.conflicted("graph.applications.update") {
		return
	}
	key := c.appKey()
	upsert := key.UniqueName != "" && preferCreateIfMissing(c.r.Header.Values("Prefer"))
	if upsert {
		a, created, err := s.Dir.UpsertApplication(c.tenant, key.UniqueName, in, c.caller(), c.lag("object", "graph.applications.update"))
		if err != nil {
			c.failErr(err)
			return
		}
		if created {
			c.entity(201, "applications/$entity", s.appJSON(a, c.domain()))
			return
		}
		c.noContent()
		return
	}
	if err := s.Dir.UpdateApplication(c.tenant, key, in, c.caller()); err != nil {
		c.failErr(err)
		return
	}
	c.noContent()
}

func preferCreateIfMissing(vals []string) bool {
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "create-if-missing") {
				return true
			}
		}
	}
	return false
}

func (s *Server) deleteApplication(c *call) {
	if err := s.Dir.DeleteApplication(c.tenant, c.appKey(), c.caller()); err != nil {
		c.failErr(err)
		return
	}
	c.noContent()
}

// conflicted answers the concurrent-update 400 when the fault fires.
func (c *call) conflicted(route string) bool {
	if !c.s.Faults.Conflict(route, c.tenant) {
		return false
	}
	c.info.Fault = "credential_conflict"
	c.fail(400, "Request_BadRequest", "Unable to complete the operation due to concurrent requests being made to the tenant. Please try again.")
	return true
}

func (s *Server) addPassword(c *call) {
	var body struct {
		PasswordCredential *struct {
			DisplayName string     `json:"displayName"`
			Start       *time.Time `json:"startDateTime"`
			End         *time.Time `json:"endDateTime"`
		} `json:"passwordCredential"`
	}
	if !c.readBody(&body) || c.conflicted("graph.applications.addPassword") {
		return
	}
	var name string
	var start, end *time.Time
	if pc := body.PasswordCredential; pc != nil {
		name, start, end = pc.DisplayName, pc.Start, pc.End
	}
	p, err := s.Dir.AddPassword(c.tenant, c.appKey(), name, start, end, c.caller(), c.lag("secret", "graph.applications.addPassword"))
	if err != nil {
		c.failErr(err)
		return
	}
	c.json(200, map[string]any{
		"@odata.context":      c.context("microsoft.graph.passwordCredential"),
		"customKeyIdentifier": nil, "displayName": nilIfEmpty(p.DisplayName), "endDateTime": graphTime(p.End), "hint": p.Hint,
		"keyId": p.KeyID, "secretText": p.Secret, "startDateTime": graphTime(p.Start),
	})
}

func (s *Server) removePassword(c *call) {
	var body struct {
		KeyID string `json:"keyId"`
	}
	if !c.readBody(&body) || c.conflicted("graph.applications.removePassword") {
		return
	}
	if err := s.Dir.RemovePassword(c.tenant, c.appKey(), body.KeyID, c.caller()); err != nil {
		c.failErr(err)
		return
	}
	c.noContent()
}
