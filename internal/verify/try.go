package verify

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

// Try runs the integration's checks with one given credential instead of
// its active one — a token per API and every probe with that secret only —
// and returns the check without recording it: the integration's state,
// last check and events stay as they are (a rotation verifies its new
// credential before making it active; docs/credentials.md). Lag right
// after the credential was made counts as settling, as after any new
// credential.
func (s *Service) Try(ctx context.Context, org, id uuid.UUID, cred integration.Credential) (Check, error) {
	in, t, err := s.store.LoadCheckTarget(ctx, s.tx.Conn(), org, id)
	if err != nil {
		return Check{}, err
	}
	cred.State = integration.CredentialActive
	in.Credentials = []integration.Credential{cred}
	c := s.run(ctx, t, in, nil)
	c.Credential = cred.ID
	c.IntegrationVersion = in.Version
	return c, nil
}
