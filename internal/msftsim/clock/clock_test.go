package clock

import (
	"testing"
	"time"
)

func TestFrozenAndWall(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFrozen(t0)
	if !c.Now().Equal(t0) || !c.Frozen() {
		t.Fatal("frozen clock moved")
	}
	if got := c.Advance(time.Hour); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("advance: %v", got)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatal("set")
	}
	w := NewWall()
	w.Advance(48 * time.Hour)
	if d := time.Until(w.Now()); d < 47*time.Hour {
		t.Fatalf("wall offset %v", d)
	}
	w.Set(t0)
	if d := w.Now().Sub(t0); d < 0 || d > time.Minute {
		t.Fatalf("wall set %v", d)
	}
}
