package microsoft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	abs "github.com/microsoft/kiota-abstractions-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithuniquename"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// Application is an app registration.
type Application struct {
	ObjectID    string
	AppID       string // the client ID
	UniqueName  string
	DisplayName string
	Passwords   []PasswordCredential
	Keys        []KeyCredential
}

// ApplicationSpec is what UpsertApplicationByUniqueName sets.
type ApplicationSpec struct {
	DisplayName    string
	SignInAudience string // default "AzureADMyOrg"
	Notes          string // shown in the portal, e.g. who manages the app
	// RequiredResourceAccess lists the application permissions the app
	// needs, by resource appId (the portal shows them; granting is
	// separate). Nil leaves the app's list as it is.
	RequiredResourceAccess []ResourceAccess
}

// ResourceAccess is one resource API's app roles an application requires.
type ResourceAccess struct {
	ResourceAppID string
	AppRoleIDs    []string
}

// PasswordCredential is a client secret's metadata (never its value).
type PasswordCredential struct {
	KeyID       string
	DisplayName string
	Hint        string
	Start, End  time.Time
}

// NewPassword is a client secret just created: Secret is shown by
// Microsoft once and never again.
type NewPassword struct {
	PasswordCredential
	Secret string // shown once by Microsoft; never logged, never in an error
}

// String never shows the secret.
func (p NewPassword) String() string {
	return fmt.Sprintf("{keyId=%s hint=%s end=%s}", p.KeyID, p.Hint, p.End.Format(time.RFC3339))
}

// GoString keeps %#v from printing the secret.
func (p NewPassword) GoString() string { return "microsoft.NewPassword" + p.String() }

// LogValue keeps slog from printing the secret.
func (p NewPassword) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", p.KeyID), slog.String("hint", p.Hint))
}

// KeyCredential is a certificate credential. Key (DER) is empty when read
// back; UpdateKeyCredentials resends existing entries by KeyID.
type KeyCredential struct {
	KeyID       string
	DisplayName string
	Type        string // "AsymmetricX509Cert"
	Usage       string // "Verify"
	Key         []byte
	Start, End  time.Time
}

// op prepares ctx for one Directory call: its own Retry-After budget, the
// caller (for the throttle gate) and how its requests may be retried.
func (d *Directory) op(ctx context.Context, r Retry) context.Context {
	s := d.s
	return withCaller(withRetry(withThrottleBudget(ctx, s.c.cfg.MaxThrottleWait), r), s.org, s.tenant, s.clientID)
}

// graph returns the Graph client with a token already fetched (so that a
// token failure is classified as Entra's, not Graph's).
func (d *Directory) graph(ctx context.Context) (*msgraphsdk.GraphServiceClient, error) {
	g, err := d.s.graphClient()
	if err != nil {
		return nil, classify("graph", "graph client", APIGraph, err)
	}
	if _, _, err := d.s.rawToken(ctx, APIGraph); err != nil {
		return nil, err
	}
	return g, nil
}

func gerr(op string, err error) error { return classify("graph", op, APIGraph, err) }

// IsClass reports whether err is an *mserr.Error of class c.
func IsClass(err error, c mserr.Class) bool {
	var e *mserr.Error
	return errors.As(err, &e) && e.Class == c
}

// ambiguous reports whether a non-idempotent write may have landed
// although it failed: no answer, or a 5xx (the transport does not resend
// those). Throttling, 4xx and a canceled context are definite.
func ambiguous(ctx context.Context, err error) bool {
	var e *mserr.Error
	if ctx.Err() != nil || !errors.As(err, &e) {
		return false
	}
	return e.Class == mserr.ClassTransient || e.Class == mserr.ClassUnknown && e.Status == 0
}

// maxAmbiguousAttempts bounds how often a non-idempotent write is sent
// after answers that leave open whether it landed.
const maxAmbiguousAttempts = 3

var appSelect = []string{"id", "appId", "uniqueName", "displayName", "passwordCredentials", "keyCredentials"}

func toApplication(a models.Applicationable) Application {
	out := Application{ObjectID: deref(a.GetId()), AppID: deref(a.GetAppId()), UniqueName: deref(a.GetUniqueName()), DisplayName: deref(a.GetDisplayName())}
	for _, p := range a.GetPasswordCredentials() {
		out.Passwords = append(out.Passwords, toPassword(p))
	}
	for _, k := range a.GetKeyCredentials() {
		kc := KeyCredential{DisplayName: deref(k.GetDisplayName()), Type: deref(k.GetTypeEscaped()), Usage: deref(k.GetUsage()), Key: k.GetKey()}
		if k.GetKeyId() != nil {
			kc.KeyID = k.GetKeyId().String()
		}
		kc.Start, kc.End = derefTime(k.GetStartDateTime()), derefTime(k.GetEndDateTime())
		out.Keys = append(out.Keys, kc)
	}
	return out
}

func toPassword(p models.PasswordCredentialable) PasswordCredential {
	pc := PasswordCredential{DisplayName: deref(p.GetDisplayName()), Hint: deref(p.GetHint()),
		Start: derefTime(p.GetStartDateTime()), End: derefTime(p.GetEndDateTime())}
	if p.GetKeyId() != nil {
		pc.KeyID = p.GetKeyId().String()
	}
	return pc
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// GetApplicationByUniqueName: GET /applications(uniqueName='{key}').
func (d *Directory) GetApplicationByUniqueName(ctx context.Context, key string) (Application, error) {
	const op = "GET /applications(uniqueName=)"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return Application{}, err
	}
	a, err := g.ApplicationsWithUniqueName(&key).Get(ctx, &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderGetRequestConfiguration{
		QueryParameters: &applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderGetQueryParameters{Select: appSelect}})
	if err != nil {
		return Application{}, gerr(op, err)
	}
	return toApplication(a), nil
}

// UpsertApplicationByUniqueName creates the application with unique name
// key, or updates it when it exists:
//
//	PATCH /applications(uniqueName='{key}')   Prefer: create-if-missing
//
// 201 with the new object, or 204 and then a GET. The upsert is addressed
// by a key dzconnect chooses, so it is idempotent: a retry after any
// failure updates the same application (never a second one, as a
// repeated POST /applications would). created reports a 201.
func (d *Directory) UpsertApplicationByUniqueName(ctx context.Context, key string, spec ApplicationSpec) (app Application, created bool, err error) {
	const op = "PATCH /applications(uniqueName=)"
	ctx = d.op(ctx, Idempotent) // upsert by key: safe to repeat
	g, err := d.graph(ctx)
	if err != nil {
		return Application{}, false, err
	}
	body := models.NewApplication()
	body.SetDisplayName(&spec.DisplayName)
	aud := spec.SignInAudience
	if aud == "" {
		aud = "AzureADMyOrg"
	}
	body.SetSignInAudience(&aud)
	if spec.Notes != "" {
		body.SetNotes(&spec.Notes)
	}
	if spec.RequiredResourceAccess != nil {
		rra := make([]models.RequiredResourceAccessable, 0, len(spec.RequiredResourceAccess))
		for _, r := range spec.RequiredResourceAccess {
			m := models.NewRequiredResourceAccess()
			appID := r.ResourceAppID
			m.SetResourceAppId(&appID)
			var ras []models.ResourceAccessable
			for _, id := range r.AppRoleIDs {
				u, err := uuid.Parse(id)
				if err != nil {
					continue
				}
				ra := models.NewResourceAccess()
				typ := "Role"
				ra.SetId(&u)
				ra.SetTypeEscaped(&typ)
				ras = append(ras, ra)
			}
			m.SetResourceAccess(ras)
			rra = append(rra, m)
		}
		body.SetRequiredResourceAccess(rra)
	}
	h := abs.NewRequestHeaders()
	h.Add("Prefer", "create-if-missing")
	a, err := g.ApplicationsWithUniqueName(&key).Patch(ctx, body,
		&applicationswithuniquename.ApplicationsWithUniqueNameRequestBuilderPatchRequestConfiguration{Headers: h})
	if err != nil {
		return Application{}, false, gerr(op, err)
	}
	if a != nil && a.GetId() != nil {
		return toApplication(a), true, nil
	}
	app, err = d.GetApplicationByUniqueName(ctx, key)
	return app, false, err
}

// GetApplication: GET /applications/{objectId}.
func (d *Directory) GetApplication(ctx context.Context, objectID string) (Application, error) {
	const op = "GET /applications/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return Application{}, err
	}
	a, err := g.Applications().ByApplicationId(objectID).Get(ctx, &applications.ApplicationItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationItemRequestBuilderGetQueryParameters{Select: appSelect}})
	if err != nil {
		return Application{}, gerr(op, err)
	}
	return toApplication(a), nil
}

// DeleteApplication: DELETE /applications/{objectId} (its service
// principal goes with it). Idempotent: an application already gone is
// success.
func (d *Directory) DeleteApplication(ctx context.Context, objectID string) error {
	const op = "DELETE /applications/{id}"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	if err := g.Applications().ByApplicationId(objectID).Delete(ctx, nil); err != nil && !IsClass(gerr(op, err), mserr.ClassNotFound) {
		return gerr(op, err)
	}
	return nil
}

// ListPasswords lists the application's client secrets (metadata only).
func (d *Directory) ListPasswords(ctx context.Context, objectID string) ([]PasswordCredential, error) {
	a, err := d.GetApplication(ctx, objectID)
	return a.Passwords, err
}

// AddPassword adds a client secret named displayName (make it unique per
// request, e.g. "dzconnect <operation id>": it is how a lost answer is
// recognised) valid until end:
//
//	POST /applications/{objectId}/addPassword
//
// Not idempotent: each POST adds a secret, and its value is shown only in
// that answer. The transport never resends it except when the failure
// proves it did not land (a 429, or nothing sent). When the answer is lost
// (timeout, 5xx, connection lost), the application's passwordCredentials
// are re-read: a credential named displayName means the POST landed and
// its value is lost, so it is removed; then the POST is sent again. After
// a success, any other credential with the same name (an earlier attempt
// that became visible late) is removed, so one secret remains.
func (d *Directory) AddPassword(ctx context.Context, objectID, displayName string, end time.Time) (NewPassword, error) {
	const op = "POST /applications/{id}/addPassword"
	if displayName == "" {
		return NewPassword{}, &mserr.Error{Service: "graph", Operation: op, Code: "NoDisplayName", Class: mserr.ClassBadRequest,
			Message: "a unique display name is required", Remedy: "A dzconnect bug: contact Dropzone support."}
	}
	for attempt := 1; ; attempt++ {
		np, err := d.addPasswordOnce(ctx, objectID, displayName, end)
		if err == nil {
			// After an ambiguous attempt, best effort: a duplicate from
			// its lost answer that is visible only now. The new secret is
			// already in hand and must reach the caller (it is shown
			// once); a duplicate still listed is found by the caller's
			// tag check on its next run. A first attempt that succeeds
			// has no such duplicate: no read (one round trip less on the
			// provisioning's critical path).
			if attempt > 1 {
				_ = d.removeNamedExcept(ctx, objectID, displayName, np.KeyID)
			}
			return np, nil
		}
		if !ambiguous(ctx, err) || attempt >= maxAmbiguousAttempts {
			return NewPassword{}, err
		}
		// Did it land? Re-read before deciding (an idempotent GET).
		if err := d.removeNamedExcept(ctx, objectID, displayName, ""); err != nil {
			return NewPassword{}, err
		}
	}
}

func (d *Directory) addPasswordOnce(ctx context.Context, objectID, displayName string, end time.Time) (NewPassword, error) {
	const op = "POST /applications/{id}/addPassword"
	ctx = d.op(ctx, NotIdempotent) // each POST adds a secret
	g, err := d.graph(ctx)
	if err != nil {
		return NewPassword{}, err
	}
	pc := models.NewPasswordCredential()
	pc.SetDisplayName(&displayName)
	if !end.IsZero() {
		pc.SetEndDateTime(&end)
	}
	body := applications.NewItemAddPasswordPostRequestBody()
	body.SetPasswordCredential(pc)
	got, err := g.Applications().ByApplicationId(objectID).AddPassword().Post(ctx, body, nil)
	if err != nil {
		return NewPassword{}, gerr(op, err)
	}
	return NewPassword{PasswordCredential: toPassword(got), Secret: deref(got.GetSecretText())}, nil
}

// removeNamedExcept removes the application's secrets named displayName
// other than keep: orphans of attempts whose answer was lost.
func (d *Directory) removeNamedExcept(ctx context.Context, objectID, displayName, keep string) error {
	pws, err := d.ListPasswords(ctx, objectID)
	if err != nil {
		return err
	}
	for _, p := range pws {
		if p.DisplayName == displayName && !strings.EqualFold(p.KeyID, keep) {
			if err := d.RemovePassword(ctx, objectID, p.KeyID); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemovePassword: POST /applications/{objectId}/removePassword {keyId}.
// Repeating it cannot remove anything else, so it is retried like an
// idempotent call; a key already gone is success.
func (d *Directory) RemovePassword(ctx context.Context, objectID, keyID string) error {
	const op = "POST /applications/{id}/removePassword"
	ctx = d.op(ctx, Idempotent) // removing one keyId twice removes it once
	id, err := uuid.Parse(keyID)
	if err != nil {
		return &mserr.Error{Service: "graph", Operation: op, Code: "InvalidKeyId", Class: mserr.ClassBadRequest, Message: "keyId is not a GUID",
			Remedy: "A dzconnect bug: contact Dropzone support."}
	}
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	body := applications.NewItemRemovePasswordPostRequestBody()
	body.SetKeyId(&id)
	if err := g.Applications().ByApplicationId(objectID).RemovePassword().Post(ctx, body, nil); err != nil {
		e := mserr.Classify("graph", op, gerr(op, err))
		if e.Status == 400 && strings.Contains(strings.ToLower(e.Message), "no password credential found") {
			return nil // already removed
		}
		return e
	}
	return nil
}

// UpdateKeyCredentials adds certificate credentials and removes others by
// keyId, keeping the rest: PATCH /applications/{objectId} replaces the
// whole keyCredentials list, so the current list is read and resent (by
// keyId) with the changes. The PATCH sends a complete list, so repeating
// it has the same result: idempotent. Concurrent edits of one application
// must be serialized by the caller (Graph answers "concurrent requests").
func (d *Directory) UpdateKeyCredentials(ctx context.Context, objectID string, add []KeyCredential, removeKeyIDs []string) error {
	const op = "PATCH /applications/{id} keyCredentials"
	app, err := d.GetApplication(ctx, objectID)
	if err != nil {
		return err
	}
	remove := map[string]bool{}
	for _, k := range removeKeyIDs {
		remove[strings.ToLower(k)] = true
	}
	var list []models.KeyCredentialable
	have := map[string]bool{}
	for _, k := range app.Keys {
		if remove[strings.ToLower(k.KeyID)] {
			continue
		}
		have[strings.ToLower(k.KeyID)] = true
		list = append(list, toModelKey(KeyCredential{KeyID: k.KeyID, DisplayName: k.DisplayName, Type: k.Type, Usage: k.Usage}))
	}
	for _, k := range add {
		if k.KeyID != "" && have[strings.ToLower(k.KeyID)] {
			continue // already there (a retry)
		}
		list = append(list, toModelKey(k))
	}
	ctx = d.op(ctx, Idempotent) // the whole list: the same PATCH twice gives the same list
	g, err := d.graph(ctx)
	if err != nil {
		return err
	}
	body := models.NewApplication()
	body.SetKeyCredentials(list)
	if _, err := g.Applications().ByApplicationId(objectID).Patch(ctx, body, nil); err != nil {
		return gerr(op, err)
	}
	return nil
}

func toModelKey(k KeyCredential) models.KeyCredentialable {
	m := models.NewKeyCredential()
	if k.KeyID != "" {
		if id, err := uuid.Parse(k.KeyID); err == nil {
			m.SetKeyId(&id)
		}
	}
	if k.DisplayName != "" {
		m.SetDisplayName(&k.DisplayName)
	}
	typ, usage := k.Type, k.Usage
	if typ == "" {
		typ = "AsymmetricX509Cert"
	}
	if usage == "" {
		usage = "Verify"
	}
	m.SetTypeEscaped(&typ)
	m.SetUsage(&usage)
	if len(k.Key) > 0 {
		m.SetKey(k.Key)
	}
	return m
}
