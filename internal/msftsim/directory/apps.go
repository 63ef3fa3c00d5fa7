package directory

import (
	"crypto/sha1" //nolint:gosec // Entra certificate thumbprints are SHA-1
	"crypto/x509"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// AppKey addresses an application by object ID, appId or uniqueName (one set).
type AppKey struct {
	ID, AppID, UniqueName string
}

func (k AppKey) String() string {
	switch {
	case k.ID != "":
		return k.ID
	case k.AppID != "":
		return k.AppID
	}
	return k.UniqueName
}

// KeyCredentialInput is a certificate credential as PATCHed by a client.
type KeyCredentialInput struct {
	KeyID       string
	DisplayName string
	Type        string
	Usage       string
	Key         []byte // DER certificate; nil keeps the existing key with KeyID
	Start, End  *time.Time
}

// AppInput are the application properties a create or PATCH sets (nil: unchanged).
type AppInput struct {
	DisplayName    *string
	UniqueName     *string
	SignInAudience *string
	KeyCredentials *[]KeyCredentialInput
	Extra          map[string]json.RawMessage
}

// Caller is who makes a Graph write: OwnedByOnly callers (only
// Application.ReadWrite.OwnedBy) may touch only the apps they own.
type Caller struct {
	SPID        string
	OwnedByOnly bool
}

func (a *Application) snapshot() Application {
	c := *a
	c.Passwords = slices.Clone(a.Passwords)
	c.Keys = slices.Clone(a.Keys)
	c.Extra = maps.Clone(a.Extra)
	c.OwnerIDs = slices.Clone(a.OwnerIDs)
	return c
}

func notFound(id string) *Error {
	return errf(404, "Request_ResourceNotFound",
		"Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

func (d *Directory) tenantForWrite(tenant string) (*Tenant, *Error) {
	t := d.tenantLocked(tenant)
	if t == nil {
		return nil, errf(401, "InvalidAuthenticationToken", "Access token validation failure: unknown tenant.")
	}
	return t, nil
}

// findApp resolves key in t, consuming a hidden read if the app is lagging.
func (d *Directory) findApp(t *Tenant, key AppKey, now time.Time) (*Application, *Error) {
	if key.ID != "" && !IsGUID(key.ID) {
		return nil, errf(400, "Request_BadRequest", "Invalid object identifier '%s'.", key.ID)
	}
	var a *Application
	switch {
	case key.ID != "":
		a = t.apps[strings.ToLower(key.ID)]
	case key.AppID != "":
		a = t.appsByAppID[strings.ToLower(key.AppID)]
	default:
		for _, x := range t.apps {
			if x.UniqueName != "" && strings.EqualFold(x.UniqueName, key.UniqueName) {
				a = x
				break
			}
		}
	}
	if a == nil || !a.vis.seen(now) {
		return nil, notFound(key.String())
	}
	return a, nil
}

func checkOwner(a *Application, c Caller) *Error {
	if c.OwnedByOnly && !slices.Contains(a.OwnerIDs, c.SPID) {
		return errf(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	return nil
}

// CreateApplication registers an app in tenant. lag delays its visibility.
func (d *Directory) CreateApplication(tenant string, in AppInput, c Caller, lag Lag) (Application, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return Application{}, err
	}
	return d.createAppLocked(t, in, c, lag)
}

func (d *Directory) createAppLocked(t *Tenant, in AppInput, c Caller, lag Lag) (Application, error) {
	if in.DisplayName == nil || *in.DisplayName == "" {
		return Application{}, errf(400, "Request_BadRequest", "Property 'displayName' is required.")
	}
	if in.UniqueName != nil && *in.UniqueName != "" {
		for _, x := range t.apps {
			if strings.EqualFold(x.UniqueName, *in.UniqueName) {
				return Application{}, errf(400, "Request_BadRequest",
					"Another object with the same value for property uniqueName already exists.")
			}
		}
		if d.uniqueNameHeldLocked(t, *in.UniqueName, d.clock.Now()) {
			return Application{}, errf(400, "Request_BadRequest",
				"Another object with the same value for property uniqueName already exists.")
		}
	}
	now := d.clock.Now()
	a := &Application{
		ID: d.NewID(), AppID: d.NewID(), TenantID: t.ID, SignInAudience: "AzureADMyOrg", Created: now,
		Extra: map[string]json.RawMessage{}, vis: t.newVisibility(now, lag),
	}
	if c.SPID != "" {
		a.OwnerIDs = []string{c.SPID}
	}
	if err := applyAppInput(a, in, now); err != nil {
		return Application{}, err
	}
	t.apps[a.ID] = a
	t.appsByAppID[a.AppID] = a
	return a.snapshot(), nil
}

func applyAppInput(a *Application, in AppInput, now time.Time) *Error {
	if in.DisplayName != nil {
		a.DisplayName = *in.DisplayName
	}
	if in.UniqueName != nil {
		if a.UniqueName != "" && *in.UniqueName != a.UniqueName {
			return errf(400, "Request_BadRequest", "Property 'uniqueName' is read-only and cannot be changed once set.")
		}
		a.UniqueName = *in.UniqueName
	}
	if in.SignInAudience != nil {
		switch *in.SignInAudience {
		case "AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount":
			a.SignInAudience = *in.SignInAudience
		default:
			return errf(400, "Request_BadRequest", "Invalid value specified for property 'signInAudience' of resource 'Application'.")
		}
	}
	if in.KeyCredentials != nil {
		keys, err := buildKeys(a, *in.KeyCredentials, now)
		if err != nil {
			return err
		}
		a.Keys = keys
	}
	for k, v := range in.Extra {
		a.Extra[k] = v
	}
	return nil
}

func buildKeys(a *Application, in []KeyCredentialInput, now time.Time) ([]*KeyCredential, *Error) {
	out := make([]*KeyCredential, 0, len(in))
	for _, k := range in {
		if k.Key == nil {
			// Resent entry without its key: keep the registered one.
			var old *KeyCredential
			for _, x := range a.Keys {
				if strings.EqualFold(x.KeyID, k.KeyID) {
					old = x
				}
			}
			if old == nil {
				return nil, errf(400, "Request_BadRequest", "Key credential with keyId '%s' requires the property 'key'.", k.KeyID)
			}
			out = append(out, old)
			continue
		}
		cert, err := x509.ParseCertificate(k.Key)
		if err != nil {
			return nil, errf(400, "Request_BadRequest", "Key value is invalid certificate value.")
		}
		kc := &KeyCredential{KeyID: k.KeyID, DisplayName: k.DisplayName, Type: k.Type, Usage: k.Usage, Cert: cert,
			Start: cert.NotBefore.UTC(), End: cert.NotAfter.UTC()}
		if kc.KeyID == "" {
			kc.KeyID = newUUIDFromCert(cert)
		}
		if kc.Type == "" {
			kc.Type = "AsymmetricX509Cert"
		}
		if kc.Usage == "" {
			kc.Usage = "Verify"
		}
		if kc.Type != "AsymmetricX509Cert" || kc.Usage != "Verify" {
			return nil, errf(400, "Request_BadRequest", "Invalid value specified for property 'type' or 'usage' of resource 'KeyCredential'.")
		}
		if k.Start != nil {
			kc.Start = k.Start.UTC()
		}
		if k.End != nil {
			kc.End = k.End.UTC()
		}
		if kc.End.After(cert.NotAfter) {
			return nil, errf(400, "Request_BadRequest", "Key credential end date is invalid.")
		}
		sum := sha1.Sum(cert.Raw) //nolint:gosec
		kc.CustomKeyIdentifier = sum[:]
		if kc.DisplayName == "" {
			kc.DisplayName = "CN=" + cert.Subject.CommonName
		}
		out = append(out, kc)
	}
	_ = now
	return out, nil
}

func newUUIDFromCert(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw) //nolint:gosec
	b := s[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	var out []byte
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[v>>4], hexd[v&15])
	}
	return string(out)
}

// GetApplication reads one application (subject to replication lag).
func (d *Directory) GetApplication(tenant string, key AppKey) (Application, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return Application{}, err
	}
	a, err := d.findApp(t, key, d.clock.Now())
	if err != nil {
		return Application{}, err
	}
	return a.snapshot(), nil
}

// ListApplications returns the visible applications that match keep, oldest first.
func (d *Directory) ListApplications(tenant string, keep func(*Application) bool) ([]Application, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return nil, err
	}
	now := d.clock.Now()
	var out []Application
	for _, a := range t.apps {
		if keep(a) && a.vis.seen(now) {
			out = append(out, a.snapshot())
		}
	}
	slices.SortFunc(out, func(x, y Application) int {
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// UpdateApplication PATCHes an application.
func (d *Directory) UpdateApplication(tenant string, key AppKey, in AppInput, c Caller) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	a, err := d.findApp(t, key, d.clock.Now())
	if err != nil {
		return err
	}
	if err := checkOwner(a, c); err != nil {
		return err
	}
	if in.KeyCredentials != nil {
		if err := t.checkKeyLifetime(a, *in.KeyCredentials); err != nil {
			return err
		}
	}
	if err := applyAppInput(a, in, d.clock.Now()); err != nil {
		return err
	}
	return nil
}

// UpsertApplication is PATCH /applications(uniqueName='x') with
// Prefer: create-if-missing: it creates the app (created=true) or updates it.
func (d *Directory) UpsertApplication(tenant, uniqueName string, in AppInput, c Caller, lag Lag) (Application, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return Application{}, false, err
	}
	if in.UniqueName != nil && !strings.EqualFold(*in.UniqueName, uniqueName) {
		return Application{}, false, errf(400, "Request_BadRequest", "The uniqueName in the request body does not match the key.")
	}
	in.UniqueName = &uniqueName
	a, ferr := d.findApp(t, AppKey{UniqueName: uniqueName}, d.clock.Now())
	if ferr == nil {
		if err := checkOwner(a, c); err != nil {
			return Application{}, false, err
		}
		if err := applyAppInput(a, in, d.clock.Now()); err != nil {
			return Application{}, false, err
		}
		return a.snapshot(), false, nil
	}
	for _, x := range t.apps {
		if strings.EqualFold(x.UniqueName, uniqueName) {
			// Exists but not yet replicated to this reader: creating it
			// again is refused, as a replica that lacks it would.
			return Application{}, false, errf(409, "Error_MsaAppDoesNotExist", "The application does not exist or is not yet replicated. Retry the request.")
		}
	}
	app, cerr := d.createAppLocked(t, in, c, lag)
	return app, true, cerr
}

// DeleteApplication soft-deletes the app and its service principal in the
// tenant: both move to deleted items for 30 days (PurgeDeleted removes
// them for good).
func (d *Directory) DeleteApplication(tenant string, key AppKey, c Caller) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	a, err := d.findApp(t, key, d.clock.Now())
	if err != nil {
		return err
	}
	if err := checkOwner(a, c); err != nil {
		return err
	}
	d.softDeleteAppLocked(t, a, d.clock.Now())
	return nil
}

// AddPassword adds a client secret, enforcing the tenant's app-management
// policy. The returned credential carries the secret text (shown once).
func (d *Directory) AddPassword(tenant string, key AppKey, displayName string, start, end *time.Time, c Caller, lag Lag) (PasswordCredential, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return PasswordCredential{}, err
	}
	now := d.clock.Now()
	a, err := d.findApp(t, key, now)
	if err != nil {
		return PasswordCredential{}, err
	}
	if err := checkOwner(a, c); err != nil {
		return PasswordCredential{}, err
	}
	pc := &PasswordCredential{KeyID: d.NewID(), DisplayName: displayName, Start: now.Truncate(time.Second)}
	if start != nil {
		pc.Start = start.UTC()
	}
	pc.End = pc.Start.AddDate(2, 0, 0)
	if end != nil {
		pc.End = end.UTC()
	}
	if !pc.End.After(pc.Start) {
		return PasswordCredential{}, errf(400, "Request_BadRequest", "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.")
	}
	// The policy that governs the app: its app-specific one, else the
	// tenant default; each restriction only when enabled and the app was
	// created on or after the policy's date.
	pol, polID := t.effectivePolicy(a)
	if pol.BlockPasswordAddition && pol.applies(pol.PasswordAdditionDisabled, a.Created) {
		msg := "Password addition is not allowed as per assigned policy '" + polID + "'."
		return PasswordCredential{}, &Error{Status: 400, Code: "CredentialTypeNotAllowedAsPerAppPolicy", Message: msg,
			Details: []ErrorDetail{{Code: "InvalidCredentialType", Message: msg, Target: "PasswordCredentials"}}}
	}
	if pol.PasswordMaxLifetime > 0 && pol.applies(pol.PasswordLifetimeDisabled, a.Created) && pc.End.Sub(pc.Start) > pol.PasswordMaxLifetime {
		return PasswordCredential{}, lifetimeError(polID)
	}
	pc.Secret = d.newSecret()
	pc.Hint = pc.Secret[:3]
	pc.vis = t.newVisibility(now, lag)
	a.Passwords = append(a.Passwords, pc)
	return *pc, nil
}

// RemovePassword removes the client secret keyID.
func (d *Directory) RemovePassword(tenant string, key AppKey, keyID string, c Caller) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	a, err := d.findApp(t, key, d.clock.Now())
	if err != nil {
		return err
	}
	if err := checkOwner(a, c); err != nil {
		return err
	}
	i := slices.IndexFunc(a.Passwords, func(p *PasswordCredential) bool { return strings.EqualFold(p.KeyID, keyID) })
	if i < 0 {
		return errf(400, "Request_BadRequest", "No password credential found with keyId '%s'.", keyID)
	}
	a.Passwords = slices.Delete(a.Passwords, i, i+1)
	return nil
}

// homeApp finds the application object behind appID: in tenant t, or
// (multi-tenant apps) in its home tenant. Callers hold d.mu.
func (d *Directory) homeApp(t *Tenant, appID string) *Application {
	if a := t.appsByAppID[appID]; a != nil {
		return a
	}
	for _, o := range d.order {
		if a := o.appsByAppID[appID]; a != nil && a.SignInAudience != "AzureADMyOrg" {
			return a
		}
	}
	return nil
}

// RemoveKey removes key credential keyID from the application, as an
// administrator does in the portal (Certificates & secrets > Delete):
// client assertions signed with it are refused from then on (AADSTS700027).
func (d *Directory) RemoveKey(tenant string, key AppKey, keyID string, c Caller) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.tenantForWrite(tenant)
	if err != nil {
		return err
	}
	a, err := d.findApp(t, key, d.clock.Now())
	if err != nil {
		return err
	}
	if err := checkOwner(a, c); err != nil {
		return err
	}
	i := slices.IndexFunc(a.Keys, func(k *KeyCredential) bool { return strings.EqualFold(k.KeyID, keyID) })
	if i < 0 {
		return errf(400, "Request_BadRequest", "No key credential found with keyId '%s'.", keyID)
	}
	a.Keys = slices.Delete(slices.Clone(a.Keys), i, i+1)
	return nil
}
