package postgres

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestUUIDEncodeMatchesPgx: with registerUUID, google/uuid values encode to
// the bytes pgx's own (slow, driver.Valuer) path produced: uuids and
// arrays of them, a valid NullUUID, and an invalid one as NULL.
func TestUUIDEncodeMatchesPgx(t *testing.T) {
	fast := pgtype.NewMap()
	registerUUID(fast)
	slow := pgtype.NewMap()
	a, b := uuid.New(), uuid.New()
	for _, tc := range []struct {
		name  string
		oid   uint32
		value any
	}{
		{"uuid", pgtype.UUIDOID, a},
		{"uuid[]", pgtype.UUIDArrayOID, []uuid.UUID{a, b, uuid.Nil}},
		{"valid NullUUID", pgtype.UUIDOID, uuid.NullUUID{UUID: b, Valid: true}},
		{"NULL NullUUID", pgtype.UUIDOID, uuid.NullUUID{}},
		{"NullUUID[]", pgtype.UUIDArrayOID, []uuid.NullUUID{{UUID: a, Valid: true}, {}}},
	} {
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			want, err := slow.Encode(tc.oid, format, tc.value, nil)
			if err != nil {
				t.Fatalf("%s (format %d), pgx's own path: %v", tc.name, format, err)
			}
			got, err := fast.Encode(tc.oid, format, tc.value, nil)
			if err != nil {
				t.Fatalf("%s (format %d): %v", tc.name, format, err)
			}
			if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("%s (format %d): %x, pgx's own path %x", tc.name, format, got, want)
			}
		}
	}
	// The plan used is the direct one: no error is built per value.
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := fast.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID{a, b, a, b}, nil); err != nil {
			t.Fatal(err)
		}
	})
	slowAllocs := testing.AllocsPerRun(100, func() {
		if _, err := slow.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID{a, b, a, b}, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs*4 > slowAllocs {
		t.Errorf("encoding 4 uuids: %.0f allocations, pgx's own path %.0f: the direct plan is not used", allocs, slowAllocs)
	}
}

func BenchmarkUUIDArrayEncode(b *testing.B) {
	ids := make([]uuid.UUID, 30)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, reg := range []bool{false, true} {
		m := pgtype.NewMap()
		name := "pgx"
		if reg {
			registerUUID(m)
			name = "registered"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, ids, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
