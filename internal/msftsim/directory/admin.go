package directory

import (
	"fmt"
	"strings"
	"time"
)

// AppSpec describes an application created through the admin API, the way
// a customer admin following the manual guide (or the organization that
// owns the provisioner app) would have made it.
type AppSpec struct {
	DisplayName string `json:"displayName"`
	UniqueName  string `json:"uniqueName,omitempty"`
	MultiTenant bool   `json:"multiTenant,omitempty"`
	// NoSecret skips creating a client secret.
	NoSecret bool `json:"noSecret,omitempty"`
	// SecretLifetime defaults to two years.
	SecretLifetime time.Duration `json:"-"`
	// CertDER registers a certificate credential.
	CertDER []byte `json:"-"`
	// ClientID and ClientSecret fix the app ID and secret value (seed
	// files for demos); generated when empty.
	ClientID     string `json:"clientId,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// AppCreds is what the admin API returns for a created app: IDs and the
// secret value (shown once, as in the portal).
type AppCreds struct {
	TenantID       string    `json:"tenantId"`
	ClientID       string    `json:"clientId"`
	ObjectID       string    `json:"applicationObjectId"`
	SPObjectID     string    `json:"servicePrincipalObjectId"`
	ClientSecret   string    `json:"clientSecret,omitempty"`
	SecretKeyID    string    `json:"secretKeyId,omitempty"`
	SecretExpires  time.Time `json:"secretExpires,omitzero"`
	CertificateKey string    `json:"certificateKeyId,omitempty"`
}

// RegisterApp creates an app, its service principal and (unless NoSecret)
// a secret in tenant, bypassing lag and app-management policy.
func (d *Directory) RegisterApp(tenant string, spec AppSpec) (AppCreds, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return AppCreds{}, errf(404, "NotFound", "tenant %s not found", tenant)
	}
	if spec.DisplayName == "" {
		spec.DisplayName = "Dropzone AI"
	}
	aud := "AzureADMyOrg"
	if spec.MultiTenant {
		aud = "AzureADMultipleOrgs"
	}
	in := AppInput{DisplayName: &spec.DisplayName, SignInAudience: &aud}
	if spec.UniqueName != "" {
		in.UniqueName = &spec.UniqueName
	}
	if spec.CertDER != nil {
		in.KeyCredentials = &[]KeyCredentialInput{{Key: spec.CertDER}}
	}
	if spec.ClientID != "" {
		spec.ClientID = strings.ToLower(spec.ClientID)
		if !IsGUID(spec.ClientID) {
			return AppCreds{}, errf(400, "BadRequest", "clientId %q is not a GUID", spec.ClientID)
		}
		for _, o := range d.order {
			if o.appsByAppID[spec.ClientID] != nil {
				return AppCreds{}, errf(409, "Conflict", "clientId %s already in use", spec.ClientID)
			}
		}
	}
	app, err := d.createAppLocked(t, in, Caller{}, Lag{})
	if err != nil {
		return AppCreds{}, err
	}
	a := t.apps[app.ID]
	if spec.ClientID != "" {
		delete(t.appsByAppID, a.AppID)
		a.AppID = spec.ClientID
		t.appsByAppID[a.AppID] = a
	}
	now := d.clock.Now()
	sp := d.newAppSP(t, a, now, Lag{})
	out := AppCreds{TenantID: t.ID, ClientID: a.AppID, ObjectID: a.ID, SPObjectID: sp.ID}
	if len(a.Keys) > 0 {
		out.CertificateKey = a.Keys[0].KeyID
	}
	if !spec.NoSecret {
		life := spec.SecretLifetime
		if life <= 0 {
			life = 2 * 365 * 24 * time.Hour
		}
		pc := &PasswordCredential{KeyID: d.NewID(), DisplayName: "msftsim admin", Start: now, End: now.Add(life), Secret: spec.ClientSecret}
		if pc.Secret == "" {
			pc.Secret = d.newSecret()
		}
		pc.Hint = pc.Secret[:3]
		a.Passwords = append(a.Passwords, pc)
		out.ClientSecret, out.SecretKeyID, out.SecretExpires = pc.Secret, pc.KeyID, pc.End
	}
	return out, nil
}

var resourceAliases = map[string]string{
	"graph": GraphAppID, "defender": DefenderAppID, "windowsdefenderatp": DefenderAppID,
	"cloud_apps": CloudAppsAppID, "mcas": CloudAppsAppID, "exchange": ExchangeAppID,
	"log_analytics": LogAnalyticsAppID, "loganalytics": LogAnalyticsAppID,
}

// resolveRoleLocked maps "Value" or "resource/Value" (resource: an alias
// such as graph, defender, cloud_apps, exchange, log_analytics, or an
// appId) to the resource service principal and app role.
func resolveRoleLocked(t *Tenant, spec string) (*ServicePrincipal, AppRole, error) {
	res, value := "", spec
	if i := strings.LastIndex(spec, "/"); i > 0 {
		res, value = strings.ToLower(spec[:i]), spec[i+1:]
		if a, ok := resourceAliases[res]; ok {
			res = a
		}
	}
	for _, sp := range t.sps {
		if res != "" && sp.AppID != res {
			continue
		}
		for _, r := range sp.AppRoles {
			if strings.EqualFold(r.Value, value) || strings.EqualFold(r.ID, value) {
				return sp, r, nil
			}
		}
	}
	return nil, AppRole{}, errf(400, "BadRequest", "role %q not offered by any resource service principal in tenant %s (missing licence?)", spec, t.ID)
}

// ConsentApp grants roles to appID's service principal in tenant (creating
// the service principal of a multi-tenant app if needed), as an admin
// clicking "Grant admin consent" would. Existing grants are kept.
func (d *Directory) ConsentApp(tenant, appID string, roles []string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return "", errf(404, "NotFound", "tenant %s not found", tenant)
	}
	appID = strings.ToLower(appID)
	now := d.clock.Now()
	sp := t.spsByAppID[appID]
	if sp == nil {
		a := d.homeApp(t, appID)
		if a == nil {
			return "", errf(404, "NotFound", "application %s not found (register it first; multi-tenant apps may live in another tenant)", appID)
		}
		sp = d.newAppSP(t, a, now, Lag{})
	}
	for _, spec := range roles {
		res, role, err := resolveRoleLocked(t, spec)
		if err != nil {
			return "", err
		}
		exists := false
		for _, a := range t.assignments {
			if a.PrincipalID == sp.ID && a.ResourceID == res.ID && a.AppRoleID == role.ID {
				exists = true
			}
		}
		if exists {
			continue
		}
		a := &AppRoleAssignment{ID: d.newAssignmentID(), AppRoleID: role.ID, PrincipalID: sp.ID, PrincipalType: "ServicePrincipal",
			PrincipalDisplayName: sp.DisplayName, ResourceID: res.ID, ResourceDisplayName: res.DisplayName, Created: now}
		t.assignments[a.ID] = a
	}
	return sp.ID, nil
}

// GrantAzureRole assigns an Azure role (ID or built-in name) to principalID
// at scope, without an authorization check.
func (d *Directory) GrantAzureRole(tenant, scope, role, principalID string) (RoleAssignment, error) {
	return d.GrantAzureRoleWithCondition(tenant, scope, role, principalID, "")
}

// GrantAzureRoleWithCondition is GrantAzureRole with an ABAC condition
// (version 2.0) on the assignment ("" for none).
func (d *Directory) GrantAzureRoleWithCondition(tenant, scope, role, principalID, condition string) (RoleAssignment, error) {
	roleID := role
	for id, name := range AzureRoleNames {
		if strings.EqualFold(name, role) {
			roleID = id
		}
	}
	parts := strings.Split(strings.Trim(scope, "/"), "/")
	if len(parts) < 2 {
		return RoleAssignment{}, fmt.Errorf("scope %q must start with /subscriptions/{id}", scope)
	}
	def := "/subscriptions/" + parts[1] + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID
	in := RoleAssignmentInput{RoleDefinitionID: def, PrincipalID: principalID, PrincipalType: "ServicePrincipal", Condition: condition}
	if condition != "" {
		in.ConditionVersion = "2.0"
	}
	ra, _, err := d.PutRoleAssignment(tenant, scope, d.NewID(), in, "")
	if err != nil {
		return RoleAssignment{}, err
	}
	return ra, nil
}

// ServicePrincipalIDForApp returns the object ID of appID's service principal in tenant.
func (d *Directory) ServicePrincipalIDForApp(tenant, appID string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return "", false
	}
	sp := t.spsByAppID[strings.ToLower(appID)]
	if sp == nil {
		return "", false
	}
	return sp.ID, true
}
