package microsoft

import (
	"context"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
)

// AppManagementPolicyFor returns the app-management policy that governs
// the application with uniqueName key: an app-specific appManagementPolicy
// assigned to it replaces the tenant default ("If this resource is not
// configured for an application or service principal, the restrictions
// default to the settings in the tenantAppManagementPolicy object"). A new
// application (none with the key yet) has none assigned:
//
//	GET /applications(uniqueName='{key}')                    404: the default
//	GET /policies/appManagementPolicies                      (Policy.Read.All)
//	GET /policies/appManagementPolicies/{id}/appliesTo       (and Application.Read.All), per enabled policy
//	GET /policies/defaultAppManagementPolicy                 when none applies
//
// policyID is the governing policy's ID ("" for the tenant default).
func (d *Directory) AppManagementPolicyFor(ctx context.Context, key string) (p AppManagementPolicy, policyID string, err error) {
	app, err := d.GetApplicationByUniqueName(ctx, key)
	switch {
	case IsClass(err, mserr.ClassNotFound) || IsClass(err, mserr.ClassNotReplicated):
		p, err = d.GetAppManagementPolicy(ctx)
		return p, "", err
	case err != nil:
		return AppManagementPolicy{}, "", err
	}
	const op = "GET /policies/appManagementPolicies"
	ctx = d.op(ctx, Idempotent)
	g, err := d.graph(ctx)
	if err != nil {
		return AppManagementPolicy{}, "", err
	}
	list, err := g.Policies().AppManagementPolicies().Get(ctx, nil)
	if err != nil {
		return AppManagementPolicy{}, "", gerr(op, err)
	}
	for _, pol := range list.GetValue() {
		if pol.GetId() == nil || !deref(pol.GetIsEnabled()) {
			continue
		}
		applies, err := g.Policies().AppManagementPolicies().ByAppManagementPolicyId(*pol.GetId()).AppliesTo().Get(ctx, nil)
		if err != nil {
			return AppManagementPolicy{}, "", gerr(op+"/{id}/appliesTo", err)
		}
		for _, o := range applies.GetValue() {
			if o.GetId() != nil && strings.EqualFold(*o.GetId(), app.ObjectID) {
				out := AppManagementPolicy{Enabled: true}
				if r := pol.GetRestrictions(); r != nil {
					readPasswordRestrictions(&out, r.GetPasswordCredentials())
					readKeyRestrictions(&out, r.GetKeyCredentials())
				}
				return out, *pol.GetId(), nil
			}
		}
	}
	p, err = d.GetAppManagementPolicy(ctx)
	return p, "", err
}

// readPasswordRestrictions applies the enforced (state not disabled)
// password restrictions to out.
func readPasswordRestrictions(out *AppManagementPolicy, rs []models.PasswordCredentialConfigurationable) {
	for _, r := range rs {
		if r.GetState() != nil && *r.GetState() == models.DISABLED_APPMANAGEMENTRESTRICTIONSTATE || r.GetRestrictionType() == nil {
			continue
		}
		switch *r.GetRestrictionType() {
		case models.PASSWORDADDITION_APPCREDENTIALRESTRICTIONTYPE:
			out.PasswordAdditionBlocked = true
		case models.PASSWORDLIFETIME_APPCREDENTIALRESTRICTIONTYPE:
			if r.GetMaxLifetime() != nil {
				out.PasswordMaxLifetime = r.GetMaxLifetime().String()
			}
		}
	}
}

// readKeyRestrictions applies the enforced certificate lifetime
// restriction (asymmetricKeyLifetime) to out.
func readKeyRestrictions(out *AppManagementPolicy, rs []models.KeyCredentialConfigurationable) {
	for _, r := range rs {
		if r.GetState() != nil && *r.GetState() == models.DISABLED_APPMANAGEMENTRESTRICTIONSTATE || r.GetRestrictionType() == nil {
			continue
		}
		if *r.GetRestrictionType() == models.ASYMMETRICKEYLIFETIME_APPKEYCREDENTIALRESTRICTIONTYPE && r.GetMaxLifetime() != nil {
			out.KeyMaxLifetime = r.GetMaxLifetime().String()
		}
	}
}
