package provision

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/jobs"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// RetireCredentialArgs removes a retiring credential once its overlap has
// ended (the job is scheduled at that time, inserted in the transaction
// that made the credential retiring), and, with Tag, every password tagged
// with a failed rotation that no live credential row holds.
type RetireCredentialArgs struct {
	Org         uuid.UUID `json:"org"`
	Integration uuid.UUID `json:"integration"`
	Credential  uuid.UUID `json:"credential" river:"unique"`
	Tag         string    `json:"tag,omitempty"`
}

// Kind implements river.JobArgs.
func (RetireCredentialArgs) Kind() string { return "retire_credential" }

// InsertOpts implements river.JobArgsWithInsertOpts: on the maintenance
// queue, unique per credential while it waits or runs, retried for about a
// day (Entra or the provisioner's consent may be unavailable for a while).
func (RetireCredentialArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, MaxAttempts: 25, UniqueOpts: river.UniqueOpts{
		ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}}}
}

func (s *Service) queueRetire(ctx context.Context, tx uow.Tx, org, in, cred uuid.UUID, tag string, at time.Time) error {
	if s.d.Jobs == nil {
		return apperr.New(apperr.Internal, "credential retirement is not wired (provision.Deps.Jobs)")
	}
	// Due now (a failed or canceled rotation's new credential): available
	// at once, not "scheduled" until River's scheduler next promotes jobs
	// (every few seconds), so it is gone before anything reads it as live.
	opts := &river.InsertOpts{}
	if at.After(time.Now()) {
		opts.ScheduledAt = at
	}
	if err := s.d.Jobs.Insert(ctx, tx, RetireCredentialArgs{Org: org, Integration: in, Credential: cred, Tag: tag}, opts); err != nil {
		return fmt.Errorf("queueing a credential's retirement: %w", err)
	}
	return nil
}

// RetireCredentialNowArgs removes a retiring credential whose overlap end
// was brought forward (every registered consumer acknowledged the active
// credential: internal/token). It is a kind of its own because
// retire_credential is unique per credential while its scheduled job
// waits; both run Retire, and whichever runs second finds the credential
// removed and does nothing.
type RetireCredentialNowArgs struct {
	Org         uuid.UUID `json:"org"`
	Integration uuid.UUID `json:"integration"`
	Credential  uuid.UUID `json:"credential" river:"unique"`
}

// Kind implements river.JobArgs.
func (RetireCredentialNowArgs) Kind() string { return "retire_credential_now" }

// InsertOpts implements river.JobArgsWithInsertOpts: as retire_credential.
func (RetireCredentialNowArgs) InsertOpts() river.InsertOpts {
	return RetireCredentialArgs{}.InsertOpts()
}

// QueueRetireNow queues the removal of a retiring credential whose overlap
// end the caller just set to now, in the caller's transaction (the
// acknowledgement's), so the removal commits with it.
func (s *Service) QueueRetireNow(ctx context.Context, tx uow.Tx, org, in, cred uuid.UUID) error {
	if s.d.Jobs == nil {
		return apperr.New(apperr.Internal, "credential retirement is not wired (provision.Deps.Jobs)")
	}
	if err := s.d.Jobs.Insert(ctx, tx, RetireCredentialNowArgs{Org: org, Integration: in, Credential: cred}, nil); err != nil {
		return fmt.Errorf("queueing a credential's early retirement: %w", err)
	}
	return nil
}

// RetireExtension registers the retire_credential and
// retire_credential_now workers on the one River client.
func (s *Service) RetireExtension() jobs.Extension {
	return jobs.Extension{Queue: jobs.QueueMaintenance, Register: func(w *river.Workers) {
		river.AddWorker(w, &retireWorker{s: s})
		river.AddWorker(w, &retireNowWorker{s: s})
	}}
}

type retireNowWorker struct {
	river.WorkerDefaults[RetireCredentialNowArgs]
	s *Service
}

func (w *retireNowWorker) Timeout(*river.Job[RetireCredentialNowArgs]) time.Duration {
	return 2 * time.Minute
}

func (w *retireNowWorker) Work(ctx context.Context, job *river.Job[RetireCredentialNowArgs]) error {
	a := job.Args
	return w.s.Retire(ctx, RetireCredentialArgs{Org: a.Org, Integration: a.Integration, Credential: a.Credential})
}

type retireWorker struct {
	river.WorkerDefaults[RetireCredentialArgs]
	s *Service
}

func (w *retireWorker) Timeout(*river.Job[RetireCredentialArgs]) time.Duration {
	return 2 * time.Minute
}

func (w *retireWorker) Work(ctx context.Context, job *river.Job[RetireCredentialArgs]) error {
	return w.s.Retire(ctx, job.Args)
}

// Retire removes a retiring credential whose overlap has ended. Write
// order:
//
//  1. removePassword in Entra, or for a certificate PATCH keyCredentials
//     without its key (idempotent: an already removed key is success). From here on the secret no longer works, whatever Vault
//     holds; a crash here re-runs the job, which removes it again.
//  2. One transaction, under the row lock, if the credential is still
//     retiring: its Vault value's destruction queued (secretgc) and the row
//     marked removed. The value is destroyed only after the secret stopped
//     working, so nothing that works is ever lost, and a crash before this
//     commit leaves a row the re-run finishes.
//
// With a tag (a failed rotation), the application's passwords so tagged
// that no active or retiring row holds are removed first. A credential
// not retiring (already removed, or reactivated) or not yet due is left
// alone.
func (s *Service) Retire(ctx context.Context, a RetireCredentialArgs) error {
	in, err := s.d.Integrations.GetIntegration(ctx, s.d.Tx.Conn(), a.Org, a.Integration)
	if apperr.Is(err, apperr.NotFound) {
		return nil // deleted or deprovisioned: its secrets were queued for destruction with it
	}
	if err != nil {
		return err
	}
	var cred *integration.Credential
	keep := map[string]bool{}
	for i, c := range in.Credentials {
		if c.ID == a.Credential {
			cred = &in.Credentials[i]
		}
		if c.KeyID.Valid && (c.State == integration.CredentialActive || (c.State == integration.CredentialRetiring && c.ID != a.Credential)) {
			keep[strings.ToLower(c.KeyID.UUID.String())] = true
		}
	}
	due := cred != nil && cred.State == integration.CredentialRetiring && cred.OverlapEnd != nil && !time.Now().Before(*cred.OverlapEnd)
	if cred != nil && cred.State == integration.CredentialRetiring && cred.OverlapEnd != nil && !due {
		return river.JobSnooze(time.Until(*cred.OverlapEnd)) // the overlap was extended
	}
	if !due && a.Tag == "" {
		return nil
	}
	if !in.AppObjectID.Valid {
		return nil
	}
	appID := in.AppObjectID.UUID.String()
	dir, err := s.retireDirectory(ctx, in)
	if err != nil {
		return err
	}
	// 1. Entra.
	if a.Tag != "" {
		pws, err := dir.ListPasswords(ctx, appID)
		if err != nil {
			return err
		}
		for _, p := range pws {
			if p.DisplayName == a.Tag && !keep[strings.ToLower(p.KeyID)] {
				if err := dir.RemovePassword(ctx, appID, p.KeyID); err != nil {
					return err
				}
			}
		}
		// A certificate rotation tags its key credential the same way.
		if err := removeKeys(ctx, dir, appID, func(k microsoft.KeyCredential) bool {
			return k.DisplayName == a.Tag && !keep[strings.ToLower(k.KeyID)]
		}); err != nil {
			return err
		}
	}
	if !due {
		return nil
	}
	if cred.KeyID.Valid {
		kid := cred.KeyID.UUID.String()
		if cred.Type == integration.CredentialCertificate {
			// The key credential: PATCH keyCredentials without it (the
			// others kept); already gone is success.
			err = removeKeys(ctx, dir, appID, func(k microsoft.KeyCredential) bool { return strings.EqualFold(k.KeyID, kid) })
		} else {
			err = dir.RemovePassword(ctx, appID, kid)
		}
		if err != nil {
			return err
		}
	}
	// 2. Vault's destruction queued with the row's removal.
	return s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		c, err := s.d.Rotation.GetCredentialForUpdate(ctx, tx, a.Org, a.Credential)
		if err != nil {
			return err
		}
		if c.State != integration.CredentialRetiring {
			return nil
		}
		if err := s.d.GC.QueueDestroy(ctx, tx, a.Org, c.SecretPath); err != nil {
			return err
		}
		_, err = s.d.Integrations.SetCredentialState(ctx, tx, a.Org, c.ID, integration.CredentialRemoved)
		return err
	})
}

// retireDirectory opens the tenant's directory with the organization's
// provisioner (a fresh session: the retirer runs outside operations).
func (s *Service) retireDirectory(ctx context.Context, in integration.Integration) (Directory, error) {
	t, err := s.d.Tenants.GetTenant(ctx, s.d.Tx.Conn(), in.Org, in.Tenant)
	if err != nil {
		return nil, err
	}
	creds, ok, err := s.d.Consent.ForTenant(ctx, in.Org, t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apperr.New(apperr.FailedPrecondition, "the organization's provisioner is no longer consented in the tenant: a retiring credential cannot be removed from Entra until it is")
	}
	return s.d.Open(creds)
}
