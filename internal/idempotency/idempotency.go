// Package idempotency describes request_id idempotency for creates
// (AIP-155): the store records the request ID and a hash of the request in
// the same transaction as the created row, so a replay returns the first
// result and creates nothing.
package idempotency

import (
	"context"
	"crypto/sha256"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Key is a create's idempotency key. The zero Key means "no request_id":
// the create is not deduplicated.
type Key struct {
	RequestID uuid.UUID
	Hash      []byte // hash of the request without request_id and secrets
}

// IsZero reports whether the create carries no request_id.
func (k Key) IsZero() bool { return k.RequestID == uuid.Nil }

// HashRequest hashes msg deterministically after clear has removed the
// fields that must not count (request_id) or must never be stored, even
// hashed (secrets). msg is cloned; the caller's message is untouched.
func HashRequest(msg proto.Message, clear func(proto.Message)) []byte {
	c := proto.Clone(msg)
	if clear != nil {
		clear(c)
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return sum[:]
}

// Store records request IDs in the caller's unit of work.
type Store interface {
	// ClaimRequest records key for method within tx, with the name of the
	// resource this call creates. It returns "" when this call is the
	// first with that request_id, else the resource name recorded by the
	// first call. The same request_id with a different request (hash) is
	// refused with InvalidArgument naming request_id. A zero key claims
	// nothing and returns "".
	ClaimRequest(ctx context.Context, tx uow.Tx, org uuid.UUID, method string, key Key, resourceName string) (prior string, err error)
}
