// Package quota holds each organization to its limits on what it may
// create: tenants, integrations, API keys and outstanding admin-consent
// links (issue 11 items 4 and 12e). The limits are the service's, the same
// for every organization (flags --quota-*); usage is counted in Postgres,
// so they hold across replicas.
//
// A use case calls Admit in its create transaction, after its idempotency
// claim (a replay of a create that succeeded is never refused) and before
// its insert. Admit takes a transaction-scoped lock on the organization's
// quota of that resource, so concurrent creates are counted one after the
// other and never overshoot.
package quota

import (
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Resource is what a quota counts.
type Resource string

// The resources with a quota.
const (
	Tenants      Resource = "tenants"
	Integrations Resource = "integrations"
	APIKeys      Resource = "api-keys"
	ConsentLinks Resource = "consent-links" // issued, not used, not expired
)

// Limits are the maximum of each resource one organization may hold; a
// resource absent or at 0 is unlimited.
type Limits map[Resource]int

// Store counts an organization's resources.
type Store interface {
	// CountForQuota locks org's quota of r until tx ends (concurrent
	// callers wait) and counts what org holds of r.
	CountForQuota(ctx context.Context, tx uow.Tx, org uuid.UUID, r Resource) (int, error)
}

// Enforcer applies Limits. A nil *Enforcer admits everything.
type Enforcer struct {
	limits Limits
	store  Store
}

// New returns an Enforcer of limits counted by store.
func New(limits Limits, store Store) *Enforcer { return &Enforcer{limits: limits, store: store} }

// Admit refuses, with ResourceExhausted naming the resource and its limit,
// one more r in org when org holds its limit already.
func (e *Enforcer) Admit(ctx context.Context, tx uow.Tx, org uuid.UUID, r Resource) error {
	if e == nil || e.limits[r] <= 0 {
		return nil
	}
	limit := e.limits[r]
	n, err := e.store.CountForQuota(ctx, tx, org, r)
	if err != nil {
		return err
	}
	if n < limit {
		return nil
	}
	return apperr.New(apperr.ResourceExhausted, "%s", message(r, n, limit)).WithReason("QUOTA_EXCEEDED").
		WithMetadata("resource", string(r)).WithMetadata("limit", strconv.Itoa(limit))
}

func message(r Resource, n, limit int) string {
	what := map[Resource]string{
		Tenants:      "tenants",
		Integrations: "integrations",
		APIKeys:      "API keys",
		ConsentLinks: "outstanding admin-consent links (issued in the last hour and not used)",
	}[r]
	next := "delete unused ones, or ask the operator to raise the quota (--quota-" + string(r) + ")"
	if r == ConsentLinks {
		next = "complete or let the outstanding links expire (one hour), or ask the operator to raise the quota (--quota-consent-links)"
	}
	return fmt.Sprintf("quota exceeded: the organization has %d %s, its limit is %d: %s", n, what, limit, next)
}
