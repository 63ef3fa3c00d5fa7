// Package handlers is the thin gRPC transport: each method validates the
// request (InvalidArgument naming every bad field, before anything is
// written), calls the domain, and converts the result to proto. Errors are
// returned as apperr values; internal/server maps them to status codes.
// Authorization happened before a handler runs (internal/server policy).
package handlers

import (
	"context"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/consent"
	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/operation"
	"github.com/dropzoneai/dzconnect/internal/organization"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/provision"
	"github.com/dropzoneai/dzconnect/internal/sharedapp"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/token"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

// AuditLister lists audit events.
type AuditLister interface {
	ListAuditEvents(ctx context.Context, org uuid.UUID, f audit.Filter, p page.Request) ([]audit.Event, error)
}

// Deps are what the handlers need.
type Deps struct {
	Organizations *organization.Service
	APIKeys       *auth.KeyService
	Tenants       *tenant.Service
	Integrations  *integration.Service
	Checks        Checker
	Audit         AuditLister
	Webhooks      *webhook.Service
	Consent       *consent.Service
	Operations    *operation.Service
	Provisioning  *provision.Service
	SharedApps    *sharedapp.Service
	Tokens        *token.Service
	// Catalogs: the permission catalog and organizations' overrides.
	Catalogs *organization.Catalogs
}

// Register registers every service on s.
func Register(s grpc.ServiceRegistrar, d Deps) {
	v1.RegisterOrganizationServiceServer(s, &organizations{d: d})
	v1.RegisterApiKeyServiceServer(s, &apiKeys{d: d})
	v1.RegisterTenantServiceServer(s, &tenants{d: d})
	v1.RegisterIntegrationServiceServer(s, &integrations{d: d})
	v1.RegisterAuditServiceServer(s, &auditEvents{d: d})
	v1.RegisterCatalogServiceServer(s, &catalogs{d: d})
	v1.RegisterWebhookServiceServer(s, &webhooks{d: d})
	v1.RegisterOperationServiceServer(s, &operations{d: d})
	v1.RegisterProvisioningServiceServer(s, &provisioning{d: d})
	v1.RegisterSharedApplicationServiceServer(s, &sharedApps{d: d})
	v1.RegisterTokenServiceServer(s, &tokens{d: d})
}

// trim returns the page and the next-page key when more rows exist: stores
// return up to Size+1 rows.
func trim[T any](rows []T, size int) ([]T, bool) {
	if len(rows) > size {
		return rows[:size], true
	}
	return rows, false
}
