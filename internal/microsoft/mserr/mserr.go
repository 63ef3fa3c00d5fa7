// Package mserr is the one classification of Microsoft errors (Entra token
// errors, Graph, ARM, Log Analytics and Defender answers): what went wrong,
// whether it may be replication lag, whether to back off, and what a
// customer admin can do about it. Every caller classifies through Classify;
// the table is in table.go, from shared/reference/microsoft.md sections 4–6.
package mserr

import (
	"errors"
	"fmt"
	"time"
)

// Class is what an error means for dzconnect.
type Class string

// The classes.
const (
	// ClassTransient: a 5xx, a timeout or a reset; retry with backoff.
	ClassTransient Class = "transient"
	// ClassThrottled: 429 / AADSTS90055; wait at least RetryAfter.
	ClassThrottled Class = "throttled"
	// ClassNotReplicated: an error Microsoft documents as replication lag
	// (Request_ResourceNotFound on a new object, PrincipalNotFound, ...).
	ClassNotReplicated Class = "not-replicated"
	// ClassInvalidSecret: AADSTS7000215 (often the secret ID pasted instead
	// of its value). Also seen for seconds after a new secret.
	ClassInvalidSecret Class = "invalid-secret"
	// ClassExpiredSecret: AADSTS7000222.
	ClassExpiredSecret Class = "expired-secret"
	// ClassAppNotFound: AADSTS700016. Also seen for seconds after a new app.
	ClassAppNotFound Class = "app-not-found"
	// ClassTenantNotFound: AADSTS90002 / AADSTS900023.
	ClassTenantNotFound Class = "tenant-not-found"
	// ClassWrongTenant: the identity signing in does not belong to the
	// tenant it signed in to (AADSTS90072, PassThroughUserMfaError: an
	// external account; for an app-only sign-in, credentials of another
	// tenant). Not "tenant not found": the tenant exists.
	ClassWrongTenant Class = "wrong-tenant"
	// ClassWrongCloud: the tenant lives in another Microsoft cloud than the
	// one dzconnect signed in to (AADSTS900382, AADSTS900432, AADSTS90038):
	// the dzconnect tenant's cloud setting is wrong.
	ClassWrongCloud Class = "wrong-cloud"
	// ClassNoServicePrincipal: the application exists but has no service
	// principal (enterprise application) in the tenant (AADSTS7000229).
	// Also seen for a while after a new service principal.
	ClassNoServicePrincipal Class = "no-service-principal"
	// ClassCertificateInvalid: AADSTS700027.
	ClassCertificateInvalid Class = "certificate-invalid"
	// ClassAppDisabled: AADSTS7000112, AADSTS70001.
	ClassAppDisabled Class = "app-disabled"
	// ClassPolicyBlocked: Conditional Access (AADSTS53003), a tenant
	// security policy (AADSTS530032) or an app-management policy.
	ClassPolicyBlocked Class = "policy-blocked"
	// ClassNotLicensed: the product is not licensed or onboarded in the
	// tenant (AADSTS500011 / AADSTS650052 for its resource, or a product
	// 403): "unavailable", not "broken".
	ClassNotLicensed Class = "not-licensed"
	// ClassPermissionMissing: 401/403 for a missing permission or role.
	ClassPermissionMissing Class = "permission-missing"
	// ClassNotFound: the object does not exist (and is not new).
	ClassNotFound Class = "not-found"
	// ClassConflict: already exists (e.g. RoleAssignmentExists).
	ClassConflict Class = "conflict"
	// ClassBadRequest: dzconnect sent something Microsoft refused.
	ClassBadRequest Class = "bad-request"
	// ClassNotConfigured: dzconnect's own configuration (or host) is
	// wrong or lacks what the call needs: no endpoint (e.g. the tenant's
	// Defender for Cloud Apps API URL), a token for the wrong audience
	// (401 InvalidAuthenticationToken), no credential in the token request
	// (AADSTS7000218), a client assertion outside its time window
	// (AADSTS700024: the host's clock). An operator's fix, not a customer
	// admin's.
	ClassNotConfigured Class = "not-configured"
	// ClassUnknown: none of the above.
	ClassUnknown Class = "unknown"
)

// Error is a classified Microsoft error. It never holds a secret or a
// token: Message is Microsoft's description with nothing of the request.
type Error struct {
	Service    string // "entra", "graph", "arm", "loganalytics", "defender", "cloudapps"
	Operation  string // what dzconnect was doing, e.g. "token graph", "GET /security/alerts_v2"
	Status     int    // HTTP status, 0 when none
	Code       string // Microsoft's code: "AADSTS7000215", "Authorization_RequestDenied", "RoleAssignmentExists"
	Class      Class
	Message    string        // Microsoft's description (first line)
	RetryAfter time.Duration // from Retry-After, for ClassThrottled
	Remedy     string        // what a customer admin can do
	// Lag reports an answer Microsoft documents as possibly replication lag
	// (shared/reference/microsoft.md section 5): expected for a while after
	// a change (new secret, app, consent, object). Whether it IS lag is the
	// caller's call, from when the change happened; see IsReplicationLag.
	Lag bool
}

// SignInFailed reports whether err is a token (sign-in) failure after which
// no other call with the same credential in the same tenant can succeed:
// checks skip the remaining steps on it.
func SignInFailed(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Class {
	case ClassInvalidSecret, ClassExpiredSecret, ClassAppNotFound, ClassTenantNotFound, ClassWrongTenant, ClassWrongCloud,
		ClassNoServicePrincipal, ClassAppDisabled, ClassPolicyBlocked, ClassCertificateInvalid:
		return true
	}
	return false
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s %s: %s (%s): %s", e.Service, e.Operation, code, e.Class, e.Message)
}
