package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
	"github.com/dropzoneai/dzconnect/internal/postgres/query"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// ProvisionGeneration returns the uniqueName generation of provisioned
// applications of kind in the Entra tenant: 1 when no deprovision bumped it.
func (db *DB) ProvisionGeneration(ctx context.Context, tx uow.Tx, org, entraTenant uuid.UUID, kind integration.Kind) (int, error) {
	rows, err := queries.GetProvisionGeneration(ctx, q(tx), query.GetProvisionGenerationParams{
		OrganizationID: org, EntraTenantID: entraTenant, Kind: string(kind)})
	if err != nil {
		return 0, translate(err, "provision generation")
	}
	if len(rows) == 0 {
		return 1, nil
	}
	return int(rows[0]), nil
}

// BumpProvisionGeneration sets the generation to next unless it is
// already higher, and returns it.
func (db *DB) BumpProvisionGeneration(ctx context.Context, tx uow.Tx, org, entraTenant uuid.UUID, kind integration.Kind, next int) (int, error) {
	g, err := queries.BumpProvisionGeneration(ctx, q(tx), query.BumpProvisionGenerationParams{
		OrganizationID: org, EntraTenantID: entraTenant, Kind: string(kind), Next: int32(next)}) //nolint:gosec // small counter
	return int(g), translate(err, "provision generation")
}
