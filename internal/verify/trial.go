package verify

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
)

// TryCredential implements integration.Verifier: Try with c, the verdict
// in the integration package's terms, and a way to record the trial as the
// integration's check once c is active (UpdateIntegration with a new
// client secret: docs/credentials.md, "Customer-managed credentials").
//
// It is an on-demand check: it takes one of the slots LimitOnDemand
// bounds (unless ctx holds one: integration.Service.UpdateSecret reserves
// it before it writes anything, ReserveOnDemand), and is refused
// (CHECKS_BUSY) when none is free.
func (s *Service) TryCredential(ctx context.Context, org, id uuid.UUID, c integration.Credential) (integration.Trial, error) {
	release, err := s.enterOnDemand(ctx, org)
	if err != nil {
		return integration.Trial{}, err
	}
	defer release()
	chk, err := s.Try(ctx, org, id, c)
	if err != nil {
		return integration.Trial{}, err
	}
	if ctx.Err() != nil {
		kind := apperr.Canceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = apperr.DeadlineExceeded
		}
		return integration.Trial{}, apperr.Wrap(ctx.Err(), kind, "the call ended while the new secret was being verified; nothing was changed")
	}
	return trialOf(chk, func(ctx context.Context, version int64) error {
		rec := chk
		rec.Trigger = TriggerAPI
		rec.IntegrationVersion = version
		_, err := s.Commit(ctx, Pending{Check: rec})
		return err
	}), nil
}

// trialOf turns a check of a credential that is not active yet into its
// verdict: the outcome, and the first step that did not pass.
func trialOf(chk Check, record func(context.Context, int64) error) integration.Trial {
	tr := integration.Trial{Outcome: chk.Outcome, Summary: chk.Summary, Record: record}
	if tr.Verified() {
		// Degraded is verified only when the secret itself was proven: read
		// from Vault and a token obtained for every API that exists in the
		// tenant (not when Vault or Microsoft did not answer).
		for _, st := range chk.Steps {
			if (st.Name == "secret" || strings.HasPrefix(st.Name, "token:")) && st.Status != StepPassed && st.Status != StepUnavailable {
				tr.Outcome, tr.Summary = integration.StateUnverified, "the new secret could not be proven: "+st.Name+" "+string(st.Status)
				tr.Step, tr.Code, tr.Message, tr.Remedy = st.Name, st.ErrorCode, st.Message, "retry the update"
				// A token step that only warns: Microsoft did not answer
				// conclusively (failStep), e.g. --microsoft-timeout.
				tr.MicrosoftUnavailable = st.Status == StepWarning && strings.HasPrefix(st.Name, "token:")
				tr.Record = nil
				return tr
			}
		}
		return tr
	}
	for _, st := range chk.Steps {
		switch st.Status {
		case StepFailed, StepBlocked, StepPropagating:
		default:
			continue
		}
		tr.Step, tr.Code, tr.Message, tr.Remedy = st.Name, st.ErrorCode, st.Message, st.Remedy
		// No token at all with the secret: Microsoft refused the secret
		// itself (the check stops at the first such token step).
		tr.CredentialRefused = strings.HasPrefix(st.Name, "token:")
		break
	}
	return tr
}
