package graph

import (
	"strings"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

// restrictionsJSON renders a policy's application restrictions as Graph's
// appManagementConfiguration: passwordCredentials (passwordAddition,
// passwordLifetime) and keyCredentials (asymmetricKeyLifetime), each with
// its state and restrictForAppsCreatedAfterDateTime.
func restrictionsJSON(p directory.Policy) map[string]any {
	restrict := graphTime(p.RestrictForAppsCreatedAfter)
	if restrict == nil {
		restrict = "2000-01-01T00:00:00Z"
	}
	state := func(disabled bool) string {
		if disabled {
			return "disabled"
		}
		return "enabled"
	}
	pw := []any{}
	if p.BlockPasswordAddition {
		pw = append(pw, map[string]any{"restrictionType": "passwordAddition", "state": state(p.PasswordAdditionDisabled), "maxLifetime": nil,
			"restrictForAppsCreatedAfterDateTime": restrict})
	}
	if p.MaxLifetime != "" {
		pw = append(pw, map[string]any{"restrictionType": "passwordLifetime", "state": state(p.PasswordLifetimeDisabled), "maxLifetime": p.MaxLifetime,
			"restrictForAppsCreatedAfterDateTime": restrict})
	}
	keys := []any{}
	if p.KeyLifetime != "" {
		keys = append(keys, map[string]any{"restrictionType": "asymmetricKeyLifetime", "state": state(p.KeyLifetimeDisabled), "maxLifetime": p.KeyLifetime,
			"restrictForAppsCreatedAfterDateTime": restrict})
	}
	return map[string]any{"passwordCredentials": pw, "keyCredentials": keys}
}

// getPolicy is GET /policies/defaultAppManagementPolicy.
func (s *Server) getPolicy(c *call) {
	p, _ := s.Dir.Policy(c.tenant)
	c.json(200, map[string]any{
		"@odata.context":          c.context("policies/defaultAppManagementPolicy/$entity"),
		"id":                      directory.DefaultPolicyID,
		"displayName":             "Default app management tenant policy",
		"description":             "Default tenant policy that enforces app management restrictions on applications and service principals. To apply policy to targeted resources, create a new policy under appManagementPolicies collection.",
		"isEnabled":               p.Enabled,
		"applicationRestrictions": restrictionsJSON(p),
		"servicePrincipalRestrictions": map[string]any{
			"passwordCredentials": []any{}, "keyCredentials": []any{},
		},
	})
}

func appPolicyJSON(p directory.AppPolicy) map[string]any {
	return map[string]any{"id": p.ID, "displayName": p.DisplayName, "description": nilIfEmpty(p.Description),
		"isEnabled": p.Enabled, "restrictions": restrictionsJSON(p.Policy)}
}

// listAppPolicies is GET /policies/appManagementPolicies.
func (s *Server) listAppPolicies(c *call) {
	ps := s.Dir.AppPolicies(c.tenant)
	c.pageOf("policies/appManagementPolicies", len(ps), func(i int) map[string]any { return appPolicyJSON(ps[i]) })
}

// getAppPolicy is GET /policies/appManagementPolicies/{id}.
func (s *Server) getAppPolicy(c *call) {
	id := c.segs[2]
	for _, p := range s.Dir.AppPolicies(c.tenant) {
		if strings.EqualFold(p.ID, id) {
			c.entity(200, "policies/appManagementPolicies/$entity", appPolicyJSON(p))
			return
		}
	}
	c.fail(404, "Request_ResourceNotFound", "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
}

// listAppliesTo is GET /policies/appManagementPolicies/{id}/appliesTo:
// the applications the policy is assigned to, as directoryObjects.
func (s *Server) listAppliesTo(c *call) {
	id := c.segs[2]
	apps, ok := s.Dir.AppliesTo(c.tenant, id)
	if !ok {
		c.fail(404, "Request_ResourceNotFound", "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	c.pageOf("directoryObjects", len(apps), func(i int) map[string]any {
		return map[string]any{"@odata.type": "#microsoft.graph.application", "id": apps[i].ID, "appId": apps[i].AppID,
			"displayName": apps[i].DisplayName, "createdDateTime": graphTime(apps[i].Created)}
	})
}
