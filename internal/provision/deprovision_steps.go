package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/microsoft/mserr"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// The deprovision steps, in order. The steps that do not apply to the mode
// (keep_application or not) skip.
const (
	DStepLocate           = "locate"            // read: what exists
	DStepSentinelRole     = "sentinel-role"     // 1. ARM role assignment dzconnect made
	DStepDirectoryRole    = "directory-role"    // 2. directory role (provisioning never assigns one)
	DStepPasswords        = "passwords"         // keep_application: removePassword for dzconnect's secrets
	DStepNotes            = "notes"             // keep_application: notes say dzconnect let go
	DStepServicePrincipal = "service-principal" // 4. DELETE /servicePrincipals/{id}
	DStepApplication      = "application"       // 5. DELETE /applications/{id}
	DStepPurge            = "purge"             // 6. DELETE /directory/deletedItems/{id}
	DStepRecords          = "records"           // 7. row deleted, secrets' destruction queued, generation bumped
)

// DeprovisionKind returns the deprovision operation kind.
func (s *Service) DeprovisionKind() operation.Kind {
	return operation.Kind{
		Name:     DeprovisionKindName,
		Finished: s.deprovisionFinished,
		Steps: []operation.Step{
			{Name: DStepLocate, Run: s.dstepLocate},
			{Name: DStepSentinelRole, Run: s.dstepSentinelRole},
			{Name: DStepDirectoryRole, Run: s.dstepDirectoryRole},
			{Name: DStepPasswords, Run: s.dstepPasswords},
			{Name: DStepNotes, Run: s.dstepNotes},
			{Name: DStepServicePrincipal, Run: s.dstepServicePrincipal},
			{Name: DStepApplication, Run: s.dstepApplication},
			{Name: DStepPurge, Run: s.dstepPurge},
			{Name: DStepRecords, Run: s.dstepRecords},
		},
		Result: s.deprovisionResult,
	}
}

// drun is one deprovision step's context.
type drun struct {
	sc  operation.StepContext
	p   DeprovisionParams
	dir Directory
}

func (s *Service) dopen(ctx context.Context, sc operation.StepContext, needDir bool) (drun, error) {
	r := drun{sc: sc}
	if err := sc.DecodeParams(&r.p); err != nil {
		return r, operation.Fail(apperr.Internal, "INTERNAL", "", "the operation's parameters cannot be read")
	}
	if !needDir {
		return r, nil
	}
	t, err := s.d.Tenants.GetTenant(ctx, s.d.Tx.Conn(), sc.Org, r.p.Tenant)
	if err != nil {
		return r, err
	}
	creds, ok, err := s.d.Consent.ForTenant(ctx, sc.Org, t)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, operation.Fail(apperr.FailedPrecondition, "PROVISIONER_NOT_CONSENTED",
			"Have a tenant administrator consent the provisioner again (GetAdminConsentLink), then deprovision again; or remove the application by hand and DeleteIntegration.",
			"the organization's provisioner is no longer consented in the tenant")
	}
	r.dir, err = s.d.Open(creds)
	return r, err
}

// locateOut is what exists: the application and service principal the
// provision made, as found at the start of the deprovision.
type locateOut struct {
	AppObjectID      string `json:"application_object_id,omitempty"`
	AppID            string `json:"app_id,omitempty"`
	UniqueName       string `json:"unique_name,omitempty"`
	ServicePrincipal string `json:"service_principal_object_id,omitempty"`
}

// dstepLocate finds the application (by the object ID the row recorded,
// else by its uniqueName: a provision that stopped between creating it and
// recording it) and its service principal. Only the application named by
// dzconnect's uniqueName is dzconnect's. Idempotent: reads.
func (s *Service) dstepLocate(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, true)
	if err != nil {
		return nil, err
	}
	var out locateOut
	var app microsoft.Application
	if r.p.AppObjectID != "" {
		app, err = r.dir.GetApplication(ctx, r.p.AppObjectID)
	} else {
		app, err = r.dir.GetApplicationByUniqueName(ctx, r.p.UniqueName)
	}
	switch {
	case err == nil:
		out.AppObjectID, out.AppID, out.UniqueName = app.ObjectID, app.AppID, app.UniqueName
	case microsoft.IsClass(err, mserr.ClassNotFound) || microsoft.IsClass(err, mserr.ClassNotReplicated):
		// Gone already (or never made).
	default:
		return nil, err
	}
	out.ServicePrincipal = r.p.ServicePrincipal
	if out.ServicePrincipal == "" && out.AppID != "" {
		sp, err := r.dir.GetServicePrincipalByAppID(ctx, out.AppID)
		switch {
		case err == nil:
			out.ServicePrincipal = sp.ObjectID
		case microsoft.IsClass(err, mserr.ClassNotFound) || microsoft.IsClass(err, mserr.ClassNotReplicated):
		default:
			return nil, err
		}
	}
	return outputs(out)
}

func (s *Service) located(sc operation.StepContext) (locateOut, error) {
	var l locateOut
	_, err := sc.Output(DStepLocate, &l)
	return l, err
}

type sentinelRemovedOut struct {
	Scope   string   `json:"scope"`
	Removed []string `json:"role_assignment_names"`
}

// dstepSentinelRole deletes the Azure role assignments dzconnect made for
// the service principal at the Sentinel scope: those with dzconnect's
// deterministic names (microsoft.RoleAssignmentName) for the roles it
// assigns. An assignment made by hand under another name (which provisioning
// adopted) is left alone. Idempotent: a DELETE of an absent assignment is
// success (204).
func (s *Service) dstepSentinelRole(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	l, err := s.located(sc)
	if err != nil {
		return nil, err
	}
	if r.p.SentinelScope == "" || l.ServicePrincipal == "" {
		return nil, operation.Skip("no Sentinel role assignment to remove")
	}
	if r, err = s.dopen(ctx, sc, true); err != nil {
		return nil, err
	}
	out := sentinelRemovedOut{Scope: r.p.SentinelScope}
	for _, role := range []Role{RoleReader, RoleResponder} {
		name := microsoft.RoleAssignmentName(r.p.SentinelScope, l.ServicePrincipal, RoleDefinitions[role].ID)
		if err := r.dir.DeleteRoleAssignment(ctx, r.p.SentinelScope, name); err != nil {
			return nil, s.rbacDeleteRemedy(sc, err, r.p.SentinelScope, name)
		}
		out.Removed = append(out.Removed, name)
	}
	return outputs(out)
}

// rbacDeleteRemedy turns ARM's refusal to delete a role assignment into
// the customer's action. ARM's 403 always says "If access was recently
// granted, please refresh your credentials", so the first is retried once
// (fresh token, after rbacRecheck), as provisioning does.
func (s *Service) rbacDeleteRemedy(sc operation.StepContext, err error, scope, name string) error {
	var e *mserr.Error
	if !errors.As(err, &e) || e.Status != 403 {
		return err
	}
	if sc.Attempt < 2 {
		return operation.Retry("not-replicated", rbacRecheck, "Azure refused to delete the role assignment %s; checking once more in case a recent grant is not applied yet", name)
	}
	return operation.Fail(apperr.PermissionDenied, "permission-missing",
		fmt.Sprintf("Have an Owner of %s give the provisioner the right to delete role assignments there (Role Based Access Control Administrator with the condition in docs/provisioning.md, or User Access Administrator), or delete the role assignment %s at %s by hand; then deprovision again.", scope, name, scope),
		"the provisioner may not delete the role assignment %s at %s", name, scope)
}

// dstepDirectoryRole: provisioning never assigns a directory role (step f
// is a customer step), so there is none of dzconnect's to remove; one a
// tenant administrator assigned is theirs.
func (s *Service) dstepDirectoryRole(context.Context, operation.StepContext) (operation.Outputs, error) {
	return nil, operation.Skip("provisioning assigns no directory role (a tenant administrator's step); none to remove")
}

type passwordsOut struct {
	Removed []string `json:"removed_key_ids"`
}

// dstepPasswords (keep_application) removes the client secrets and
// generated certificates dzconnect added: those its credential rows record and any tagged "dzconnect op=…"
// (an attempt's orphan). Nobody else holds their values once Vault's
// copies are destroyed. Idempotent: removing an absent key is success.
func (s *Service) dstepPasswords(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	l, err := s.located(sc)
	if err != nil {
		return nil, err
	}
	if !r.p.KeepApplication {
		return nil, operation.Skip("the application is deleted with its passwords")
	}
	if l.AppObjectID == "" {
		return nil, operation.Skip("no application")
	}
	if r, err = s.dopen(ctx, sc, true); err != nil {
		return nil, err
	}
	pws, err := r.dir.ListPasswords(ctx, l.AppObjectID)
	if err != nil {
		return nil, err
	}
	ours := map[string]bool{}
	for _, k := range r.p.PasswordKeyIDs {
		ours[strings.ToLower(k)] = true
	}
	out := passwordsOut{Removed: []string{}}
	for _, pw := range pws {
		if !ours[strings.ToLower(pw.KeyID)] && !strings.HasPrefix(pw.DisplayName, passwordTagPrefix) {
			continue
		}
		if err := r.dir.RemovePassword(ctx, l.AppObjectID, pw.KeyID); err != nil {
			return nil, err
		}
		out.Removed = append(out.Removed, pw.KeyID)
	}
	// The certificates dzconnect generated (key credentials tagged the
	// same way; their private keys are destroyed with the Vault values).
	// A caller's certificate of ProvisionIntegration is the caller's: kept.
	if err := removeKeys(ctx, r.dir, l.AppObjectID, func(k microsoft.KeyCredential) bool {
		if ours[strings.ToLower(k.KeyID)] || strings.HasPrefix(k.DisplayName, passwordTagPrefix) {
			out.Removed = append(out.Removed, k.KeyID)
			return true
		}
		return false
	}); err != nil {
		return nil, err
	}
	return outputs(out)
}

// dstepNotes (keep_application) patches the application's notes to say
// dzconnect no longer manages it. Idempotent: the same PATCH.
func (s *Service) dstepNotes(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	l, err := s.located(sc)
	if err != nil {
		return nil, err
	}
	if !r.p.KeepApplication {
		return nil, operation.Skip("the application is deleted")
	}
	if l.AppObjectID == "" {
		return nil, operation.Skip("no application")
	}
	if r, err = s.dopen(ctx, sc, true); err != nil {
		return nil, err
	}
	name := resource.Integration{Org: sc.Org, Tenant: r.p.Tenant, Integration: r.p.Integration}.String()
	if err := r.dir.SetApplicationNotes(ctx, l.AppObjectID, DetachedNotes(name)); err != nil {
		return nil, err
	}
	return outputs(map[string]any{"notes_patched": true})
}

// DetachedNotes are the notes of an application deprovisioned with
// keep_application.
func DetachedNotes(integrationName string) string {
	return "No longer managed by dzconnect: " + integrationName + " was deprovisioned with keep_application. dzconnect removed its client secrets and role assignments; the application, its service principal and its permissions are yours to keep or delete."
}

type deletedOut struct {
	ObjectID string `json:"object_id,omitempty"`
	Note     string `json:"note,omitempty"`
}

// dstepServicePrincipal deletes the service principal (its app role
// assignments go with it). A 404 is success. A 403 is tolerated: whether
// Application.ReadWrite.OwnedBy covers the service principal it created is
// not documented, and deleting the application (next step) deletes its
// service principal too.
func (s *Service) dstepServicePrincipal(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	l, err := s.located(sc)
	if err != nil {
		return nil, err
	}
	if r.p.KeepApplication {
		return nil, operation.Skip("keep_application: the service principal stays")
	}
	if l.ServicePrincipal == "" {
		return nil, operation.Skip("no service principal")
	}
	if r, err = s.dopen(ctx, sc, true); err != nil {
		return nil, err
	}
	out := deletedOut{ObjectID: l.ServicePrincipal}
	if err := r.dir.DeleteServicePrincipal(ctx, l.ServicePrincipal); err != nil {
		if !microsoft.IsClass(err, mserr.ClassPermissionMissing) {
			return nil, err
		}
		out.Note = "refused (403); deleted with the application"
	}
	return outputs(out)
}

// dstepApplication deletes the application: Entra moves it (and its
// service principal) to deleted items for 30 days. A 404 is success.
func (s *Service) dstepApplication(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	l, err := s.located(sc)
	if err != nil {
		return nil, err
	}
	if r.p.KeepApplication {
		return nil, operation.Skip("keep_application: the application stays")
	}
	if l.AppObjectID == "" {
		return nil, operation.Skip("no application")
	}
	if r, err = s.dopen(ctx, sc, true); err != nil {
		return nil, err
	}
	if err := r.dir.DeleteApplication(ctx, l.AppObjectID); err != nil {
		return nil, err
	}
	return outputs(deletedOut{ObjectID: l.AppObjectID})
}

type purgeOut struct {
	Purged []string `json:"purged_object_ids"`
}

// dstepPurge permanently deletes the service principal and the
// application from deleted items, so nothing can restore them and the
// uniqueName is free (the generation bump already avoids it). A 404 is
// success.
func (s *Service) dstepPurge(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	l, err := s.located(sc)
	if err != nil {
		return nil, err
	}
	if r.p.KeepApplication {
		return nil, operation.Skip("keep_application: nothing deleted")
	}
	if l.AppObjectID == "" && l.ServicePrincipal == "" {
		return nil, operation.Skip("nothing deleted")
	}
	if r, err = s.dopen(ctx, sc, true); err != nil {
		return nil, err
	}
	out := purgeOut{Purged: []string{}}
	for _, id := range []string{l.ServicePrincipal, l.AppObjectID} {
		if id == "" {
			continue
		}
		if err := r.dir.PurgeDeletedItem(ctx, id); err != nil {
			return nil, err
		}
		out.Purged = append(out.Purged, id)
	}
	return outputs(out)
}

type recordsOut struct {
	DestroyedSecrets int `json:"destroyed_secrets"`
	NextGeneration   int `json:"next_generation"`
}

// dstepRecords ends dzconnect's records, in one transaction: the
// integration row is deleted (its credential rows with it), the
// destruction of every credential's Vault secret is queued (destroy_secret
// jobs: an unreachable Vault delays it, never skips it), and the
// uniqueName generation is bumped past the one this integration used, so
// a later provision names a new application. Then the secrets are
// destroyed at once (best effort; the queued jobs finish what fails).
// Idempotent: a row already gone means an earlier attempt committed; the
// generation bump never lowers it.
func (s *Service) dstepRecords(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	r, err := s.dopen(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	var (
		paths []string
		out   recordsOut
	)
	err = s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if out.NextGeneration, err = s.d.Generations.BumpProvisionGeneration(ctx, tx, sc.Org, r.p.EntraTenant, r.p.Kind, r.p.Generation+1); err != nil {
			return err
		}
		in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, sc.Org, r.p.Integration)
		if apperr.Is(err, apperr.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, c := range in.Credentials {
			if err := s.d.GC.QueueDestroy(ctx, tx, sc.Org, c.SecretPath); err != nil {
				return err
			}
			paths = append(paths, c.SecretPath)
		}
		return s.d.Integrations.DeleteIntegration(ctx, tx, sc.Org, r.p.Integration)
	})
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := s.d.Secrets.Destroy(ctx, p); err != nil {
			s.d.Log.WarnContext(ctx, "destroying a secret failed; its queued destruction will retry", "path", p, "error", err)
		}
	}
	out.DestroyedSecrets = len(paths)
	return outputs(out)
}

// deprovisionResult is the deprovision operation's result.
func (s *Service) deprovisionResult(sc operation.StepContext) (any, error) {
	var p DeprovisionParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	l, _ := s.located(sc)
	return map[string]any{
		"integration":      resource.Integration{Org: sc.Org, Tenant: p.Tenant, Integration: p.Integration}.String(),
		"keep_application": p.KeepApplication, "application_object_id": l.AppObjectID, "app_id": l.AppID,
		"service_principal_object_id": l.ServicePrincipal,
	}, nil
}

// passwordTagPrefix starts the display name of every client secret a
// provision adds (PasswordTag).
const passwordTagPrefix = "dzconnect op="

func decodeJSON(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}
