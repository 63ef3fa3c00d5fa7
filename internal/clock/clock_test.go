package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	if d := time.Until(System().Now()); d > time.Second || d < -time.Second {
		t.Fatalf("System is off by %s", d)
	}
	file := filepath.Join(t.TempDir(), "clock")
	c := FromFile(file)
	if c.Offset() != 0 {
		t.Fatal("a missing file shifts the clock")
	}
	for _, tc := range []struct {
		content string
		want    time.Duration
	}{{"840h\n", 840 * time.Hour}, {"", 0}, {"soon", 0}, {"-1h", -time.Hour}} {
		if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := c.Offset(); got != tc.want {
			t.Fatalf("%q: offset %s, want %s", tc.content, got, tc.want)
		}
		if d := c.Now().Sub(time.Now().Add(tc.want)); d > time.Second || d < -time.Second {
			t.Fatalf("%q: Now off by %s", tc.content, d)
		}
	}
}
