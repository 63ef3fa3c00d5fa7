package app

import (
	"context"

	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/microsoft"
)

// consentGrants implements consent.GrantReader with the Microsoft adapter:
// a directory session with the provisioner's own credentials reads its
// service principal's app role assignments.
type consentGrants struct{ c *microsoft.Client }

var _ consent.GrantReader = consentGrants{}

func (g consentGrants) AppRoleGrants(ctx context.Context, c consent.Credentials, clientID string) ([]consent.Grant, error) {
	d, err := g.c.NewDirectory(microsoft.Credentials{Cloud: c.Cloud, Org: c.Org, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret})
	if err != nil {
		return nil, err
	}
	gs, err := d.AppRoleGrants(ctx, clientID)
	if err != nil {
		return nil, err
	}
	out := make([]consent.Grant, len(gs))
	for i, gr := range gs {
		out[i] = consent.Grant{ResourceAppID: gr.ResourceAppID, Value: gr.Value}
	}
	return out, nil
}

var _ consent.Confirmer = consentGrants{}

// ConfirmServicePrincipal gets a Graph token as the provisioner in its
// tenant: a fresh session, so the answer is Entra's, not a cached token's.
func (g consentGrants) ConfirmServicePrincipal(ctx context.Context, c consent.Credentials) error {
	s, err := g.c.NewSession(microsoft.Credentials{Cloud: c.Cloud, Org: c.Org, TenantID: c.TenantID, ClientID: c.ClientID, Secret: c.Secret})
	if err != nil {
		return err
	}
	_, err = s.Token(ctx, microsoft.APIGraph)
	return err
}
