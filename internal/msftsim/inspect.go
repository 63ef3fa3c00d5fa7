package msftsim

import (
	"strings"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

// AppState is what the simulator holds for an application, for tests that
// assert on the directory after dzconnect wrote to it. Password values are
// never returned: SecretMatches compares one.
type AppState struct {
	ObjectID   string
	AppID      string
	UniqueName string
	Passwords  []PasswordState
	KeyIDs     []string
	// KeyNames are the key credentials' display names.
	KeyNames []string
	// Extra are the other properties a client set (requiredResourceAccess, notes).
	Extra map[string]string
}

// PasswordState is one client secret's metadata.
type PasswordState struct {
	KeyID       string
	DisplayName string
	End         time.Time // endDateTime
}

// Applications lists a tenant's applications that match keep (nil: all),
// oldest first.
func (a *Admin) Applications(tenant string, keep func(AppState) bool) ([]AppState, error) {
	apps, err := a.sim.dir.ListApplications(tenant, func(*directory.Application) bool { return true })
	if err != nil {
		return nil, err
	}
	var out []AppState
	for _, app := range apps {
		s := AppState{ObjectID: app.ID, AppID: app.AppID, UniqueName: app.UniqueName, Extra: map[string]string{}}
		for _, p := range app.Passwords {
			s.Passwords = append(s.Passwords, PasswordState{KeyID: p.KeyID, DisplayName: p.DisplayName, End: p.End})
		}
		for _, k := range app.Keys {
			s.KeyIDs = append(s.KeyIDs, k.KeyID)
			s.KeyNames = append(s.KeyNames, k.DisplayName)
		}
		for k, v := range app.Extra {
			s.Extra[k] = string(v)
		}
		if keep == nil || keep(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// SecretMatches reports whether secret is the value of the application's
// password keyID: how a test proves the secret Entra holds is the one
// dzconnect stored.
func (a *Admin) SecretMatches(tenant, appObjectID, keyID, secret string) bool {
	apps, err := a.sim.dir.ListApplications(tenant, func(app *directory.Application) bool { return app.ID == appObjectID })
	if err != nil || len(apps) != 1 {
		return false
	}
	for _, p := range apps[0].Passwords {
		if strings.EqualFold(p.KeyID, keyID) {
			return p.Secret == secret
		}
	}
	return false
}

// ServicePrincipalsOf counts appID's service principals in tenant.
func (a *Admin) ServicePrincipalsOf(tenant, appID string) (int, error) {
	sps, err := a.sim.dir.ListServicePrincipals(tenant, func(sp *directory.ServicePrincipal) bool { return strings.EqualFold(sp.AppID, appID) })
	return len(sps), err
}

// AppRoleAssignments lists the app roles granted to the service principal
// spID.
func (a *Admin) AppRoleAssignments(tenant, spID string) ([]directory.AppRoleAssignment, error) {
	return a.sim.dir.AppRoleAssignments(tenant, spID)
}

// RoleAssignments lists the Azure role assignments at scope (and below)
// of principalID.
func (a *Admin) RoleAssignments(tenant, scope, principalID string) ([]directory.RoleAssignment, error) {
	return a.sim.dir.ListRoleAssignments(tenant, scope, principalID)
}

// DeletedItem is a soft-deleted application or service principal in a
// tenant's deleted items.
type DeletedItem struct {
	Type       string `json:"type"` // "application" or "servicePrincipal"
	ObjectID   string `json:"objectId"`
	AppID      string `json:"appId"`
	UniqueName string `json:"uniqueName,omitempty"` // applications only
}

// DeletedItems lists a tenant's deleted items (applications, then service
// principals) still within their 30 days.
func (a *Admin) DeletedItems(tenant string) ([]DeletedItem, error) {
	var out []DeletedItem
	for _, typ := range []string{"application", "servicePrincipal"} {
		items, err := a.sim.dir.ListDeleted(tenant, typ)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			d := DeletedItem{Type: it.Type, ObjectID: it.ID()}
			if it.Type == "application" {
				d.AppID, d.UniqueName = it.App.AppID, it.App.UniqueName
			} else {
				d.AppID = it.SP.AppID
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// DirectoryRoleAssignments lists a tenant's Entra directory role
// assignments.
func (a *Admin) DirectoryRoleAssignments(tenant string) ([]directory.DirectoryRoleAssignment, error) {
	return a.sim.dir.DirectoryRoles(tenant)
}

// SetSoftDeleteReleasesUniqueName: see directory.SetSoftDeleteReleasesUniqueName
// (default false: a soft-deleted application holds its uniqueName).
func (a *Admin) SetSoftDeleteReleasesUniqueName(release bool) {
	a.sim.dir.SetSoftDeleteReleasesUniqueName(release)
}

// TokenRequests counts the token requests (route entra.token, any answer)
// the simulator served for clientID, from the request log (the last 10,000
// requests of all clients).
func (a *Admin) TokenRequests(clientID string) int {
	n := 0
	for _, e := range a.sim.rec.Log(0) {
		if e.Route == "entra.token" && strings.EqualFold(e.Client, clientID) {
			n++
		}
	}
	return n
}
