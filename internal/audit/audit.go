// Package audit defines the audit trail: the call context every write
// carries (who, which method, which request) and the events the store
// appends in the same transaction as the write itself.
package audit

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Appender records a write in the caller's unit of work.
type Appender interface {
	// AppendAudit records that the call in ctx (CallFrom) wrote resource.
	AppendAudit(ctx context.Context, tx uow.Tx, org uuid.UUID, resource string) error
}

// SystemActor is the actor of writes made by background work.
const SystemActor = "system"

// Call identifies the API call a write belongs to.
type Call struct {
	Actor     string // API key resource name, "service-admin" or SystemActor
	Method    string // full gRPC method
	RequestID string // caller's request_id, or the server-assigned call ID
}

type callKey struct{}

// WithCall returns ctx carrying c.
func WithCall(ctx context.Context, c Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the call of ctx; background work gets the system actor.
func CallFrom(ctx context.Context) Call {
	if c, ok := ctx.Value(callKey{}).(Call); ok {
		return c
	}
	return Call{Actor: SystemActor, Method: "background", RequestID: ""}
}

// Event is one recorded write.
type Event struct {
	Org        uuid.UUID
	Seq        int64
	Actor      string
	Method     string
	Resource   string
	RequestID  string
	CreateTime time.Time
}

// Filter narrows a listing.
type Filter struct {
	Resource string // exact resource name, optional
}
