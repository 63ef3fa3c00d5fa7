// Package secretgc is the contract for destroying Vault secrets whose owner
// (an integration, a credential, a webhook, a provisioner) is gone: the
// destruction is queued in the unit of work that removed or orphaned the
// owner, so a crash or an unreachable Vault delays it but never skips it.
package secretgc

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Queue queues destructions.
type Queue interface {
	// QueueDestroy queues the destruction of every version of the Vault
	// KV v2 path (relative to the configured mount and prefix) in tx.
	QueueDestroy(ctx context.Context, tx uow.Tx, org uuid.UUID, path string) error
}
