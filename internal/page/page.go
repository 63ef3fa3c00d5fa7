// Package page implements keyset pagination: opaque page tokens bound to the
// list's filters, and the size rules every List RPC shares.
package page

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
)

// Size limits of every List RPC.
const (
	DefaultSize = 50
	MaxSize     = 1000
)

// Request is a decoded page request: at most Size items after the key After
// (uuid.Nil for the first page). Keys are UUIDv7, so key order is creation order.
type Request struct {
	Size  int
	After uuid.UUID
	// AfterSeq is used by lists keyed by a sequence number (audit events).
	AfterSeq int64
}

type token struct {
	After  uuid.UUID `json:"a,omitempty"`
	Seq    int64     `json:"s,omitempty"`
	Filter string    `json:"f"`
}

// filterKey binds a token to the filters of the request that produced it.
func filterKey(filters []string) string {
	h := sha256.New()
	for _, f := range filters {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:9])
}

// Parse validates page_size and page_token. filters are the request's
// filter values (parent, kind, ...); a token from a request with other
// filters is refused.
func Parse(size int32, tok string, filters ...string) (Request, error) {
	var v apperr.Violations
	r := Request{Size: int(size)}
	switch {
	case size < 0:
		v.Add("page_size", "must not be negative")
	case size == 0:
		r.Size = DefaultSize
	case size > MaxSize:
		r.Size = MaxSize
	}
	if tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		var t token
		if err == nil {
			err = json.Unmarshal(raw, &t)
		}
		switch {
		case err != nil:
			v.Add("page_token", "is not a token this service issued")
		case t.Filter != filterKey(filters):
			v.Add("page_token", "was issued for a request with other filters")
		default:
			r.After, r.AfterSeq = t.After, t.Seq
		}
	}
	return r, v.Err()
}

// Next returns the token for the page after the item with key last.
func Next(last uuid.UUID, filters ...string) string {
	return encode(token{After: last, Filter: filterKey(filters)})
}

// NextSeq returns the token for the page after the item with sequence seq.
func NextSeq(seq int64, filters ...string) string {
	return encode(token{Seq: seq, Filter: filterKey(filters)})
}

func encode(t token) string {
	raw, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(raw)
}
