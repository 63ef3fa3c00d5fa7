package verify

import "context"

type directoryKey struct{}

// WithDirectory returns ctx carrying d, a session of the organization's
// provisioner already open in the integration's tenant: a check run with
// it reads Entra's grants (and the application's credentials) through d
// instead of reading the provisioner's credentials (Postgres, Vault) and
// opening a session of its own, whose first call is a token request. The
// provision operation's verify step passes the operation's provisioner
// session (its permissions do not change during a provisioning).
func WithDirectory(ctx context.Context, d Directory) context.Context {
	return context.WithValue(ctx, directoryKey{}, d)
}

// provisionerDirectory is the session WithDirectory put in ctx (nil:
// none).
func provisionerDirectory(ctx context.Context) Directory {
	d, _ := ctx.Value(directoryKey{}).(Directory)
	return d
}
