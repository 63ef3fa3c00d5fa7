package page

import (
	"testing"

	"github.com/google/uuid"
)

func TestParseDefaultsAndLimits(t *testing.T) {
	for _, tc := range []struct {
		in   int32
		want int
	}{{0, DefaultSize}, {1, 1}, {MaxSize, MaxSize}, {MaxSize + 1, MaxSize}} {
		r, err := Parse(tc.in, "")
		if err != nil || r.Size != tc.want {
			t.Errorf("Parse(%d) = %d, %v; want %d", tc.in, r.Size, err, tc.want)
		}
	}
	if _, err := Parse(-1, ""); err == nil {
		t.Error("negative page_size accepted")
	}
}

func TestTokenRoundTripAndBinding(t *testing.T) {
	id := uuid.Must(uuid.NewV7())
	tok := Next(id, "organizations/a", "healthy")
	r, err := Parse(10, tok, "organizations/a", "healthy")
	if err != nil || r.After != id {
		t.Fatalf("round trip: %v %v", r, err)
	}
	if _, err := Parse(10, tok, "organizations/a", "broken"); err == nil {
		t.Fatal("token accepted for other filters")
	}
	if _, err := Parse(10, "not-a-token"); err == nil {
		t.Fatal("garbage token accepted")
	}
	seq := NextSeq(42, "p")
	if r, err := Parse(10, seq, "p"); err != nil || r.AfterSeq != 42 {
		t.Fatalf("seq token: %v %v", r, err)
	}
}
