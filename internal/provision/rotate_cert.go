package provision

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/crashpoint"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// The certificate variant of the rotate kind (GenerateCertificateCredential,
// and RotateCredential of an integration whose active credential is a
// certificate dzconnect generated): the same policy, verify and activate
// steps as a secret's rotation; the client-secret step skips and the
// certificate step makes the credential (docs/credentials.md).

// rotateCertOut is the rotate kind's certificate step's record.
type rotateCertOut struct {
	Credential   string    `json:"credential"`
	KeyID        string    `json:"key_id"`
	Thumbprint   string    `json:"thumbprint"`
	EndTime      time.Time `json:"end_time"`
	VaultVersion int64     `json:"vault_version"`
}

// certificateType reports whether p asks for a certificate.
func (p RotateParams) certificateType() bool { return p.Type == integration.CredentialCertificate }

// rotateCertificate makes the new certificate credential. Write order:
//
//  1. The credential row this operation makes has a fixed ID
//     (CredentialID) and Vault path. Already recorded (a crash after 5):
//     adopted; any other key tagged with the operation is removed.
//  2. Otherwise every key credential tagged with the operation
//     (PasswordTag as its display name) is an orphan of an attempt that
//     crashed between its upload and its row: no row points at its
//     private key, so nothing uses it. Removed first.
//  3. A new RSA key pair and a self-signed certificate (lifetime fitted to
//     the policy by step policy, at most two years).
//  4. Vault first: the private key and the certificate (PEM),
//     check-and-set on the credential's own path. The private key exists
//     only in memory before this and only in Vault after it, so a key
//     Entra holds always has its private key stored. A crash here leaves
//     a Vault version no row points at: a re-run writes a newer one over
//     it, a failed operation's end hook queues its destruction.
//  5. The public certificate to Entra: PATCH keyCredentials with the
//     existing keys kept (UpdateKeyCredentials, as provisioning's
//     certificate step), the key named with the tag. Refused: the step
//     fails, the Vault value is overwritten by a re-run or destroyed by
//     the end hook; nothing is in Entra.
//  6. The row, pending (stored, not yet verified), with the Vault version.
//
// So no key is left orphaned in Entra and none is lost. The active
// credential is not touched. Kill points: rotate:certificate:after_vault,
// rotate:certificate:after_call.
func (s *Service) rotateCertificate(ctx context.Context, sc operation.StepContext) (operation.Outputs, error) {
	var p RotateParams
	if err := sc.DecodeParams(&p); err != nil {
		return nil, err
	}
	if !p.certificateType() {
		return nil, operation.Skip("a client secret rotation")
	}
	var pol policyOut
	if _, err := sc.Output(RotateStepPolicy, &pol); err != nil {
		return nil, err
	}
	r, err := s.open(ctx, sc)
	if err != nil {
		return nil, err
	}
	tag, credID := PasswordTag(sc.Operation), CredentialID(sc.Operation)
	// 1. Already recorded: adopt.
	c, err := s.d.Rotation.GetCredentialForUpdate(ctx, s.d.Tx.Conn(), sc.Org, credID)
	if err == nil {
		if err := removeTaggedKeys(ctx, r.dir, p.AppObjectID, tag, c.KeyID.UUID.String()); err != nil {
			return nil, err
		}
		return outputs(rotateCertOut{Credential: c.ID.String(), KeyID: c.KeyID.UUID.String(), EndTime: deref(c.EndTime), VaultVersion: c.SecretVersion})
	}
	if !apperr.Is(err, apperr.NotFound) {
		return nil, err
	}
	// 2. Orphans of a crashed attempt.
	if err := removeTaggedKeys(ctx, r.dir, p.AppObjectID, tag, ""); err != nil {
		return nil, err
	}
	// 3. The key pair and certificate.
	life := time.Duration(pol.CertificateLifetimeSeconds) * time.Second
	gen, err := GenerateCertificate("dzconnect "+p.Integration.String(), time.Now(), life)
	if err != nil {
		return nil, err
	}
	// 4. Vault.
	path := integration.CredentialSecretPath(sc.Org, p.Integration, credID)
	version, err := integration.WriteSecret(ctx, s.d.Secrets, path, gen.PEM, 0)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.KindOrDefault(err, apperr.Unavailable), "storing the certificate's private key in Vault failed; nothing was uploaded to Entra")
	}
	crashpoint.Hit(crashpoint.Name(sc.Kind, RotateStepCert, "after_vault")) // test-only: in Vault only
	// 5. Entra.
	keyID := uuid.New()
	if err := r.dir.UpdateKeyCredentials(ctx, p.AppObjectID, []microsoft.KeyCredential{{KeyID: keyID.String(), DisplayName: tag,
		Type: "AsymmetricX509Cert", Usage: "Verify", Key: gen.DER, Start: gen.NotBefore, End: gen.NotAfter}}, nil); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.Name(sc.Kind, RotateStepCert, "after_call")) // test-only: in Vault and Entra, no row
	// 6. The row.
	start, end := gen.NotBefore, gen.NotAfter
	c = integration.Credential{Org: sc.Org, Integration: p.Integration, ID: credID, Type: integration.CredentialCertificate,
		KeyID: uuid.NullUUID{UUID: keyID, Valid: true}, StartTime: &start, EndTime: &end, SecretPath: path, SecretVersion: version,
		Source: integration.SourceProvisioned, State: integration.CredentialPending}
	if err := s.d.Tx.InTx(ctx, func(ctx context.Context, tx uow.Tx) error {
		_, err := s.d.Rotation.InsertStoredPendingCredential(ctx, tx, c)
		return err
	}); err != nil {
		return nil, err
	}
	return outputs(rotateCertOut{Credential: credID.String(), KeyID: keyID.String(), Thumbprint: gen.Thumbprint, EndTime: end, VaultVersion: version})
}

// removeTaggedKeys removes the application's key credentials named tag,
// except keep, in one PATCH (none: no request).
func removeTaggedKeys(ctx context.Context, dir Directory, appObjectID, tag, keep string) error {
	return removeKeys(ctx, dir, appObjectID, func(k microsoft.KeyCredential) bool {
		return k.DisplayName == tag && !strings.EqualFold(k.KeyID, keep)
	})
}

// removeKeys removes the application's key credentials for which drop
// holds, keeping the others (PATCH keyCredentials resends them); nothing
// to remove: no PATCH. Idempotent: a key already gone is not sent.
func removeKeys(ctx context.Context, dir Directory, appObjectID string, drop func(microsoft.KeyCredential) bool) error {
	app, err := dir.GetApplication(ctx, appObjectID)
	if err != nil {
		return err
	}
	var ids []string
	for _, k := range app.Keys {
		if drop(k) {
			ids = append(ids, k.KeyID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return dir.UpdateKeyCredentials(ctx, appObjectID, nil, ids)
}
