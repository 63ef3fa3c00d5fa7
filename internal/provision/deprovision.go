package provision

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// DeprovisionKindName is the operation kind that removes what provisioning
// made (docs/provisioning.md "Deprovisioning").
const DeprovisionKindName = "deprovision"

// DeprovisionParams are the deprovision operation's parameters: what the
// integration row recorded when the deprovision started (the steps work
// from these, so a crash and re-run sees the same list even after the
// row is gone). Never secrets.
type DeprovisionParams struct {
	Integration     uuid.UUID        `json:"integration"`
	Tenant          uuid.UUID        `json:"tenant"`
	EntraTenant     uuid.UUID        `json:"entra_tenant"`
	Kind            integration.Kind `json:"kind"`
	KeepApplication bool             `json:"keep_application,omitempty"`
	// UniqueName is the application's uniqueName (generation Generation):
	// how the step locate finds an application a provision made but had
	// not recorded yet.
	UniqueName string `json:"unique_name"`
	Generation int    `json:"generation"`
	// AppObjectID and ServicePrincipal as recorded on the row ("" when
	// provisioning stopped before recording them).
	AppObjectID      string `json:"application_object_id,omitempty"`
	ServicePrincipal string `json:"service_principal_object_id,omitempty"`
	// SentinelScope is the resource group scope of the Sentinel role
	// assignment ("" for Defender).
	SentinelScope string `json:"sentinel_scope,omitempty"`
	// PasswordKeyIDs are the Entra key IDs of the integration's client
	// secret credentials (keep_application removes them).
	PasswordKeyIDs []string `json:"password_key_ids,omitempty"`
}

// Generations keeps the uniqueName generation per organization, Entra
// tenant and kind (postgres.DB).
type Generations interface {
	ProvisionGeneration(ctx context.Context, tx uow.Tx, org, entraTenant uuid.UUID, kind integration.Kind) (int, error)
	BumpProvisionGeneration(ctx context.Context, tx uow.Tx, org, entraTenant uuid.UUID, kind integration.Kind, next int) (int, error)
}

// errRunning carries the deprovision operation already running on the
// integration out of the transaction (which it rolls back).
type errRunning struct{ op operation.Operation }

func (e *errRunning) Error() string { return "a deprovision is already running: " + e.op.Name() }

// Deprovision starts the deprovision operation of a provisioned
// integration: in one transaction it claims request_id (a replay returns
// the operation it started), locks the integration row, refuses a
// customer-managed integration (FailedPrecondition NOT_PROVISIONED: dzconnect
// did not make its application, DeleteIntegration forgets it) and one with
// a provision still running (FailedPrecondition OPERATION_RUNNING: cancel
// it, then deprovision), returns a deprovision already running on it
// unchanged, and otherwise starts the operation with what the row recorded
// and appends the audit event. The row lock makes "one provision or
// deprovision at a time per integration" hold between concurrent callers.
// Unknown and other-organization integrations are NotFound.
func (s *Service) Deprovision(ctx context.Context, target resource.Integration, keepApplication bool, key idempotency.Key) (operation.Operation, error) {
	org, id := target.Org, target.Integration
	opID := operation.NewID()
	opName := operation.Name{Org: org, ID: opID}.String()
	var (
		out   operation.Operation
		prior string
	)
	err := s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		p, err := s.d.Keys.ClaimRequest(ctx, tx, org, "DeprovisionIntegration", key, opName)
		if err != nil || p != "" {
			prior = p
			return err
		}
		in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		name := target.String()
		if in.Tenant != target.Tenant {
			return apperr.NotFoundf(name)
		}
		if in.Mode != integration.ModeProvisioned {
			return apperr.New(apperr.FailedPrecondition,
				"%s is customer-managed: dzconnect did not make its application, so there is nothing to deprovision; use DeleteIntegration (dzctl integration delete) to stop managing it — the customer's application stays in the tenant", name).
				WithReason("NOT_PROVISIONED")
		}
		running, err := s.d.Operations.Unfinished(ctx, tx, org, name)
		if err != nil {
			return err
		}
		if len(running) > 0 {
			op := running[0]
			if op.Kind == DeprovisionKindName {
				return &errRunning{op: op}
			}
			return apperr.New(apperr.FailedPrecondition,
				"operation %s (%s) is still running on %s: cancel it (CancelOperation) and wait for it to end, then deprovision", op.Name(), op.Kind, name).
				WithReason("OPERATION_RUNNING").WithMetadata("operation", op.Name())
		}
		// The deprovision owns the integration's state from here: the
		// sweep skips it and checks recorded meanwhile are history only
		// (deprovisionFinished hands the state back if it does not succeed).
		in.State = integration.StateDeprovisioning
		if _, err := s.d.Integrations.UpdateIntegration(ctx, tx, in); err != nil {
			return err
		}
		t, err := s.d.Tenants.GetTenant(ctx, tx, org, in.Tenant)
		if err != nil {
			return err
		}
		gen, err := s.d.Generations.ProvisionGeneration(ctx, tx, org, t.EntraTenantID, in.Kind)
		if err != nil {
			return err
		}
		params := DeprovisionParams{Integration: id, Tenant: in.Tenant, EntraTenant: t.EntraTenantID, Kind: in.Kind,
			KeepApplication: keepApplication, UniqueName: UniqueName(org, t.EntraTenantID, in.Kind, gen), Generation: gen}
		if in.AppObjectID.Valid {
			params.AppObjectID = in.AppObjectID.UUID.String()
		}
		if in.ServicePrincipal.Valid {
			params.ServicePrincipal = in.ServicePrincipal.UUID.String()
		}
		if in.Sentinel != nil && in.Sentinel.SubscriptionID != uuid.Nil && in.Sentinel.ResourceGroup != "" {
			params.SentinelScope = Workspace{SubscriptionID: in.Sentinel.SubscriptionID, ResourceGroup: in.Sentinel.ResourceGroup}.Scope()
		}
		for _, c := range in.Credentials {
			if c.Type == integration.CredentialClientSecret && c.KeyID.Valid {
				params.PasswordKeyIDs = append(params.PasswordKeyIDs, c.KeyID.UUID.String())
			}
		}
		if out, err = s.d.Operations.Start(ctx, tx, operation.Spec{Org: org, ID: opID, Kind: DeprovisionKindName, Target: name,
			Params: params, RequestID: key.RequestID}); err != nil {
			return err
		}
		return s.d.Audit.AppendAudit(ctx, tx, org, name)
	})
	var running *errRunning
	if errors.As(err, &running) {
		return running.op, nil
	}
	if err != nil {
		return operation.Operation{}, err
	}
	if prior != "" {
		n, err := operation.ParseName("request_id", prior)
		if err != nil {
			return operation.Operation{}, err
		}
		return s.d.Operations.Get(ctx, n.Org, n.ID)
	}
	return out, nil
}

// deprovisionFinished is the deprovision kind's end hook
// (operation.Kind.Finished), run in the transaction that writes the
// operation's final state. A deprovision that succeeded deleted the row
// (step records). One that failed or was canceled hands the integration
// back to the checks: state unverified, so the next check (the sweep's, or
// one on demand) decides from what is left in the tenant; the operation
// says which step stopped and why. A row already gone is left alone.
func (s *Service) deprovisionFinished(ctx context.Context, tx uow.Tx, op operation.Operation) error {
	if op.State == operation.StateSucceeded {
		return nil
	}
	var p DeprovisionParams
	if err := decodeJSON(op.Params, &p); err != nil {
		return err
	}
	in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, op.Org, p.Integration)
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if in.State != integration.StateDeprovisioning {
		return nil
	}
	in.State = integration.StateUnverified
	_, err = s.d.Integrations.UpdateIntegration(ctx, tx, in)
	return err
}

// provisionFinished is the provision kind's end hook (operation.Kind.Finished),
// run in the transaction that writes the operation's final state. A
// provision that failed or was canceled must not leave its integration in
// state "provisioning" for ever (the sweep skips such rows): it moves to
// "broken", unless a step already set a final state (blocked-by-policy by
// the policy step, or a check's outcome by the verify step). The reason is
// the operation's error (or its cancel); what exists in the tenant is in
// the operation's step outputs, which DeprovisionIntegration removes. From
// then on the periodic checks own the state. A succeeded provision was
// given its state by the verify step; an integration deleted meanwhile is
// left alone.
func (s *Service) provisionFinished(ctx context.Context, tx uow.Tx, op operation.Operation) error {
	if op.State == operation.StateSucceeded {
		return nil
	}
	var p Params
	if err := decodeJSON(op.Params, &p); err != nil {
		return err
	}
	in, err := s.d.Integrations.GetIntegrationForUpdate(ctx, tx, op.Org, p.Integration)
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if in.State != integration.StateProvisioning {
		return nil
	}
	in.State = integration.StateBroken
	_, err = s.d.Integrations.UpdateIntegration(ctx, tx, in)
	return err
}
