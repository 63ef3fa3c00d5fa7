package postgres

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerUUID teaches a connection's type map to encode google/uuid
// values (uuid.UUID, uuid.NullUUID) as binary uuids directly. Without it
// pgx finds no plan for them but their driver.Valuer: each value became a
// string, a failed binary encode (an error formatted with fmt), a parse of
// the string and a second encode, about 3 µs per value; a sweep's grouped
// record passes six uuid arrays (BenchmarkSweep, session 9: about a
// twentieth of dzconnect's own CPU per check). Scanning is unchanged.
func registerUUID(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncodePlan}, m.TryWrapEncodePlanFuncs...)
}

// pgUUID and pgNullUUID are pgtype.UUIDValuers.
type (
	pgUUID     uuid.UUID
	pgNullUUID uuid.NullUUID
)

func (u pgUUID) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: u, Valid: true}, nil }

func (u pgNullUUID) UUIDValue() (pgtype.UUID, error) {
	return pgtype.UUID{Bytes: u.UUID, Valid: u.Valid}, nil
}

func tryWrapUUIDEncodePlan(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	switch v := value.(type) {
	case uuid.UUID:
		return &wrapUUIDEncodePlan{}, pgUUID(v), true
	case uuid.NullUUID:
		return &wrapUUIDEncodePlan{}, pgNullUUID(v), true
	}
	return nil, nil, false
}

type wrapUUIDEncodePlan struct{ next pgtype.EncodePlan }

func (p *wrapUUIDEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *wrapUUIDEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	switch v := value.(type) {
	case uuid.UUID:
		return p.next.Encode(pgUUID(v), buf)
	case uuid.NullUUID:
		return p.next.Encode(pgNullUUID(v), buf)
	}
	return p.next.Encode(value, buf)
}
