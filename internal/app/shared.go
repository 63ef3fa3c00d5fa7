package app

import (
	"context"
	"time"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// sharedAwareSecrets implements verify.Integrations: an integration in
// management mode shared has no credential of its own, so its checks read
// the shared application's secret (at the version the application row
// points at); every other integration reads its active credential's. This
// is the one place shared mode touches how checks get credentials: the
// client ID (the shared application's) and the tenant are the
// integration's own, so tokens are for that tenant with the shared
// application's client ID and secret.
type sharedAwareSecrets struct {
	own    verify.Integrations
	shared *sharedapp.Service
}

var (
	_ verify.Integrations  = sharedAwareSecrets{}
	_ verify.SecretChanges = sharedAwareSecrets{}
)

// SecretChangeTime implements verify.SecretChanges: a shared integration's
// secret changes with its shared application's (UpdateSharedApplication).
func (s sharedAwareSecrets) SecretChangeTime(ctx context.Context, in integration.Integration) (time.Time, bool) {
	if in.Mode != sharedapp.ModeShared {
		return time.Time{}, false
	}
	return s.shared.SecretChangeTime(ctx, in)
}

// SecretEndTime implements verify.SecretChanges: a shared integration's
// secret expires with its shared application's (nil when the organization
// did not say when).
func (s sharedAwareSecrets) SecretEndTime(ctx context.Context, in integration.Integration) (*time.Time, bool) {
	if in.Mode != sharedapp.ModeShared {
		return nil, false
	}
	return s.shared.SecretEndTime(ctx, in)
}

func (s sharedAwareSecrets) ReadSecret(ctx context.Context, in integration.Integration) (string, error) {
	if in.Mode == sharedapp.ModeShared {
		return s.shared.ReadSecret(ctx, in)
	}
	return s.own.ReadSecret(ctx, in)
}
