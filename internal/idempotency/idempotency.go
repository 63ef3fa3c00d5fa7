// Package idempotency describes request_id idempotency for creates
// (AIP-155): the store records the request ID and a hash of the request in
// the same transaction as the created row, so a replay returns the first
// result and creates nothing.
package idempotency

import (
	"crypto/sha256"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
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
