package integration

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/idempotency"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/quota"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/secretgc"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Deps are what the use cases need.
type Deps struct {
	Tx      uow.Runner
	Store   Store
	Secrets SecretStore
	Keys    idempotency.Store
	Audit   audit.Appender
	GC      secretgc.Queue // destructions, queued in the transaction that orphans a secret
	Log     *slog.Logger
	// Tenants, when set, reads the tenant of a new integration: a kind
	// retired in its cloud is refused (CheckCloud).
	Tenants TenantReader
	// VerifyWait bounds how long a new client secret that Microsoft may
	// not have replicated yet is tried again before UpdateIntegration
	// refuses it (default 20s; see UpdateSecret).
	VerifyWait time.Duration
}

// Service runs the integration use cases that span Postgres and Vault. It
// owns their transactions.
type Service struct {
	tx      uow.Runner
	store   Store
	secrets SecretStore
	keys    idempotency.Store
	audit   audit.Appender
	gc      secretgc.Queue
	log     *slog.Logger
	now     func() time.Time
	tenants TenantReader

	verifier   Verifier // tries a new secret before it replaces the active one (UseVerifier)
	verifyWait time.Duration
	quota      *quota.Enforcer
}

// UseQuota holds creates to the organization's quota (internal/quota); nil
// (the default) admits everything.
func (s *Service) UseQuota(q *quota.Enforcer) { s.quota = q }

// NewService returns a Service.
func NewService(d Deps) *Service {
	if d.VerifyWait <= 0 {
		d.VerifyWait = 20 * time.Second
	}
	return &Service{tx: d.Tx, store: d.Store, secrets: d.Secrets, keys: d.Keys, audit: d.Audit, gc: d.GC, log: d.Log, now: time.Now,
		verifyWait: d.VerifyWait, tenants: d.Tenants}
}

// CredentialSecretPath is where one credential's value lives in Vault,
// relative to the configured mount and prefix. Each credential has its own
// path, so one credential's secret is destroyed without touching another's
// (a rotation's retiring credential, a reaped pending one). Credentials
// moved from the single-credential schema keep their former path,
// organizations/{o}/integrations/{i}/client-secret.
func CredentialSecretPath(org, integration, credential uuid.UUID) string {
	return fmt.Sprintf("organizations/%s/integrations/%s/credentials/%s", org, integration, credential)
}

func integrationName(org, tenant, id uuid.UUID) string {
	return resource.Integration{Org: org, Tenant: tenant, Integration: id}.String()
}

// newCredential is a customer's client secret about to be stored.
func newCredential(org, integration uuid.UUID, meta CredentialMeta) Credential {
	c := Credential{Org: org, Integration: integration, ID: uuid.Must(uuid.NewV7()), Type: CredentialClientSecret,
		KeyID: meta.KeyID, Hint: meta.Hint, EndTime: meta.EndTime, Source: SourceCustomer, State: CredentialPending}
	c.SecretPath = CredentialSecretPath(org, integration, c.ID)
	return c
}

// pendingCredential returns in's pending credential whose value was never
// recorded as stored.
func pendingCredential(in Integration) (Credential, bool) {
	for _, c := range in.Credentials {
		if c.State == CredentialPending && c.SecretVersion == 0 {
			return c, true
		}
	}
	return Credential{}, false
}

// CreateCustomerManaged creates an integration from credentials a customer
// admin made by hand: meta describes the client secret.
//
// Write order, so that a crash at any point leaves no visible
// half-integration and loses no secret:
//  1. One transaction commits the pending integration (invisible to Get
//     and List), its pending credential (with the Vault path) and the
//     request_id. A crash here leaves no secret anywhere; the pending-row
//     reaper deletes the stale rows.
//  2. The secret is written to Vault at the credential's path
//     (check-and-set). A crash here leaves the secret in Vault and the
//     rows still invisible: a retry with the same request_id finds them and
//     finishes them; without a retry the reaper deletes the rows and queues
//     the secret's destruction in the same transaction.
//  3. One transaction activates the credential with the Vault version,
//     makes the integration visible and appends the audit event. From here
//     on the integration exists and its secret is in Vault.
//
// The caller learns of success only after step 3, so nothing it was told
// exists can be missing its secret.
func (s *Service) CreateCustomerManaged(ctx context.Context, in Integration, meta CredentialMeta, secret string, key idempotency.Key) (Integration, error) {
	if err := s.checkTenantCloud(ctx, in); err != nil {
		return Integration{}, err
	}
	in.ID = uuid.Must(uuid.NewV7())
	in.Mode = ModeCustomerManaged
	in.State = StateUnverified
	var (
		row    Integration
		replay bool
	)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.LockTenant(ctx, tx, in.Org, in.Tenant); err != nil {
			return err
		}
		prior, err := s.keys.ClaimRequest(ctx, tx, in.Org, "CreateIntegration", key, integrationName(in.Org, in.Tenant, in.ID))
		if err != nil {
			return err
		}
		if prior != "" {
			n, err := resource.ParseIntegration("request_id", prior)
			if err != nil {
				return err
			}
			replay = true
			row, err = s.store.GetIntegrationIncludingPending(ctx, tx, n.Org, n.Integration)
			return err
		}
		if err := s.quota.Admit(ctx, tx, in.Org, quota.Integrations); err != nil {
			return err
		}
		if row, err = s.store.InsertIntegration(ctx, tx, in); err != nil {
			return err
		}
		c, err := s.store.InsertCredential(ctx, tx, newCredential(in.Org, in.ID, meta))
		row.Credentials = []Credential{c}
		return err
	})
	if err != nil {
		return Integration{}, err
	}
	if replay && !row.Pending {
		return row, nil
	}
	cred, ok := pendingCredential(row)
	if !ok {
		return Integration{}, apperr.New(apperr.Aborted, "the create is being rolled back; retry it")
	}
	version, err := WriteSecret(ctx, s.secrets, cred.SecretPath, secret, 0)
	if err != nil {
		return Integration{}, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable),
			"storing the client secret in Vault failed; the integration was not created (retry with the same request_id)")
	}
	var out Integration
	err = s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if _, err := s.store.ActivateCredential(ctx, tx, row.Org, cred.ID, version); err != nil {
			return err
		}
		if _, err := s.store.MakeIntegrationVisible(ctx, tx, row.Org, row.ID); err != nil {
			return err
		}
		if err := s.audit.AppendAudit(ctx, tx, row.Org, integrationName(row.Org, row.Tenant, row.ID)); err != nil {
			return err
		}
		out, err = s.store.GetIntegration(ctx, tx, row.Org, row.ID)
		return err
	})
	if apperr.Is(err, apperr.NotFound) {
		if got, gerr := s.store.GetIntegration(ctx, s.tx.Conn(), row.Org, row.ID); gerr == nil {
			return got, nil // a concurrent call with the same request_id finished it first
		}
		// The reaper rolled the create back while the secret was being
		// written: the secret just stored belongs to nothing.
		s.orphaned(ctx, row.Org, cred.SecretPath)
		return Integration{}, apperr.New(apperr.Aborted, "the create took longer than the pending TTL and was rolled back; retry it")
	}
	return out, err
}

// orphaned queues the destruction of a secret written after its row went
// away, so nothing is left in Vault.
func (s *Service) orphaned(ctx context.Context, org uuid.UUID, path string) {
	ctx = context.WithoutCancel(ctx)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error { return s.gc.QueueDestroy(ctx, tx, org, path) })
	if err != nil {
		s.log.ErrorContext(ctx, "queueing an orphaned secret's destruction failed", "path", path, "error", err)
	}
}

// abandon removes a pending credential whose update failed after its
// secret may have reached Vault, and queues that secret's destruction, in
// one transaction.
func (s *Service) abandon(ctx context.Context, c Credential) {
	ctx = context.WithoutCancel(ctx)
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		if err := s.store.DeleteCredential(ctx, tx, c.Org, c.ID); err != nil {
			return err
		}
		return s.gc.QueueDestroy(ctx, tx, c.Org, c.SecretPath)
	})
	if err != nil {
		s.log.ErrorContext(ctx, "abandoning a pending credential failed; the reaper will remove it", "path", c.SecretPath, "error", err)
	}
}

// WriteSecret stores secret as a new version at path with check-and-set
// against expected (the version the caller's row points at; 0 for a new
// path). When Vault is ahead of the row — an earlier attempt stored a
// version and then failed before its row was written — the secret is
// written on top of the latest version instead: that orphan version was
// never referenced, and versions are kept, so nothing is lost.
func WriteSecret(ctx context.Context, secrets SecretStore, path, secret string, expected int64) (int64, error) {
	v, err := secrets.PutClientSecret(ctx, path, secret, expected)
	if !apperr.Is(err, apperr.Aborted) {
		return v, err
	}
	latest, err := secrets.CurrentVersion(ctx, path)
	if err != nil {
		return 0, err
	}
	return secrets.PutClientSecret(ctx, path, secret, latest)
}

// Get returns a visible integration with its credentials.
func (s *Service) Get(ctx context.Context, org, id uuid.UUID) (Integration, error) {
	return s.store.GetIntegration(ctx, s.tx.Conn(), org, id)
}

// List lists visible integrations with their credentials.
func (s *Service) List(ctx context.Context, org uuid.UUID, f Filter, p page.Request) ([]Integration, error) {
	return s.store.ListIntegrations(ctx, s.tx.Conn(), org, f, p)
}

// Mutation changes an integration's settings and the metadata of its
// active credential (or, with a new secret, of the new credential, which
// starts without metadata). It runs under the row lock and may refuse.
type Mutation func(in *Integration, cred *CredentialMeta) error

// Update applies mutate after checking the caller's etag (version; 0
// skips the check). A non-empty secret replaces the active credential
// only once it is verified; see UpdateSecret.
func (s *Service) Update(ctx context.Context, org, id uuid.UUID, version int64, mutate Mutation, secret string) (Integration, error) {
	if secret != "" {
		r, err := s.UpdateSecret(ctx, org, id, version, mutate, secret)
		return r.Integration, err
	}
	var out Integration
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetIntegrationForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		active, hasActive := cur.Active()
		meta := active.Meta()
		if err := mutate(&cur, &meta); err != nil {
			return err
		}
		if !meta.Equal(active.Meta()) {
			if !hasActive {
				return apperr.New(apperr.FailedPrecondition, "the integration has no active credential to describe")
			}
			if _, err := s.store.UpdateCredential(ctx, tx, active.withMeta(meta)); err != nil {
				return err
			}
		}
		if _, err := s.store.UpdateIntegration(ctx, tx, cur); err != nil {
			return err
		}
		if err := s.audit.AppendAudit(ctx, tx, org, integrationName(org, cur.Tenant, id)); err != nil {
			return err
		}
		out, err = s.store.GetIntegration(ctx, tx, org, id)
		return err
	})
	return out, err
}

// Delete deletes the integration and, in the same transaction, queues the
// destruction of every credential's secret, so an unreachable Vault delays
// the destruction but never skips it. The secrets are then destroyed
// right away when Vault answers (the queued destructions find nothing
// left); the API answer does not wait for a retry.
func (s *Service) Delete(ctx context.Context, org, id uuid.UUID, version int64) error {
	var paths []string
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		cur, err := s.store.GetIntegrationForUpdate(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if version != 0 && version != cur.Version {
			return apperr.EtagMismatch()
		}
		if err := s.store.DeleteIntegration(ctx, tx, org, id); err != nil {
			return err
		}
		for _, c := range cur.Credentials {
			if err := s.gc.QueueDestroy(ctx, tx, org, c.SecretPath); err != nil {
				return err
			}
			paths = append(paths, c.SecretPath)
		}
		return s.audit.AppendAudit(ctx, tx, org, integrationName(org, cur.Tenant, id))
	})
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := s.secrets.Destroy(ctx, p); err != nil {
			s.log.WarnContext(ctx, "destroying a secret failed; its queued destruction will retry", "path", p, "error", err)
		}
	}
	return nil
}

// ReapPending removes what creates and secret updates left half-done
// longer than olderThan ago (a crash, a timeout), in one transaction:
// pending credentials whose secret was never recorded as stored (their
// secrets' destruction queued) and pending integrations (with their
// request IDs, so a late retry starts afresh). It returns how many pending
// credentials were removed; several replicas may run it at once.
func (s *Service) ReapPending(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := s.now().Add(-olderThan)
	var n int
	err := s.tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		creds, err := s.store.ListStalePendingCredentials(ctx, tx, cutoff)
		if err != nil {
			return err
		}
		for _, c := range creds {
			if err := s.store.DeleteCredential(ctx, tx, c.Org, c.ID); err != nil {
				return err
			}
			if err := s.gc.QueueDestroy(ctx, tx, c.Org, c.SecretPath); err != nil {
				return err
			}
		}
		gone, err := s.store.DeletePendingIntegrations(ctx, tx, cutoff)
		if err != nil {
			return err
		}
		for _, in := range gone {
			if err := s.store.DeleteRequestKeys(ctx, tx, in.Org, integrationName(in.Org, in.Tenant, in.ID)); err != nil {
				return err
			}
		}
		n = len(creds)
		return nil
	})
	return n, err
}

// ReadSecret returns the active credential's secret, for verification.
func (s *Service) ReadSecret(ctx context.Context, in Integration) (string, error) {
	c, ok := in.Active()
	if !ok {
		return "", apperr.New(apperr.NotFound, "the integration has no active credential")
	}
	return s.secrets.ReadClientSecret(ctx, c.SecretPath, c.SecretVersion)
}
