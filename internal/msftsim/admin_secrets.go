package msftsim

import "github.com/dropzoneai/dzconnect/internal/msftsim/directory"

// AddAppSecret adds a client secret to application appID in tenant (its
// home tenant), as an administrator does in the portal ("New client
// secret"): default lifetime, subject to the tenant's app-management
// policy. It returns the value (shown once) and the key ID.
func (a *Admin) AddAppSecret(tenant, appID string) (secret, keyID string, err error) {
	pc, err := a.sim.dir.AddPassword(tenant, directory.AppKey{AppID: appID}, "added by an administrator", nil, nil, directory.Caller{}, directory.Lag{})
	if err != nil {
		return "", "", err
	}
	return pc.Secret, pc.KeyID, nil
}

// RemoveAppSecret removes client secret keyID from application appID in
// tenant: tokens for it fail from then on (AADSTS7000215), in every tenant
// a multi-tenant application is consented in.
func (a *Admin) RemoveAppSecret(tenant, appID, keyID string) error {
	return a.sim.dir.RemovePassword(tenant, directory.AppKey{AppID: appID}, keyID, directory.Caller{})
}

// RemoveAppKey removes certificate (key credential) keyID from application
// appID in tenant: client assertions signed with it fail from then on
// (AADSTS700027, the key was not found).
func (a *Admin) RemoveAppKey(tenant, appID, keyID string) error {
	return a.sim.dir.RemoveKey(tenant, directory.AppKey{AppID: appID}, keyID, directory.Caller{})
}
