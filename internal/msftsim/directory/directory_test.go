package directory

import (
	"testing"
	"time"

	"github.com/dropzoneai/dzconnect/internal/msftsim/clock"
)

func TestISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"P180D": 180 * 24 * time.Hour, "P1Y": 365 * 24 * time.Hour,
		"PT12H": 12 * time.Hour, "P1DT1H": 25 * time.Hour, "P2W": 14 * 24 * time.Hour} {
		got, err := ParseISODuration(in)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "P", "180D", "PXD"} {
		if _, err := ParseISODuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := FormatISODuration(90 * 24 * time.Hour); s != "P90D" {
		t.Errorf("format %s", s)
	}
}

func TestVisibilityReadsAndDuration(t *testing.T) {
	now := time.Unix(0, 0)
	tn := &Tenant{}
	v := tn.newVisibility(now, Lag{Reads: 2, For: time.Minute})
	first, second := v.seen(now), v.seen(now) // each call is a read
	if first || second {
		t.Fatal("visible during hidden reads")
	}
	if v.seen(now) {
		t.Fatal("visible before the duration")
	}
	if !v.seen(now.Add(time.Minute)) {
		t.Fatal("hidden after both")
	}
	// Three refusals; the wait imposed is the duration from the first
	// refusal, charged once.
	if tn.lag.Refusals() != 3 || tn.lag.Wait() != time.Minute {
		t.Fatalf("ledger: %d refusals, wait %v", tn.lag.Refusals(), tn.lag.Wait())
	}
	var none *visibility
	if !none.seen(now) {
		t.Fatal("nil visibility hides")
	}
}

func TestIDsRepeatWithSeed(t *testing.T) {
	a, b := New(clock.NewFrozen(time.Unix(0, 0)), 5), New(clock.NewFrozen(time.Unix(0, 0)), 5)
	for range 5 {
		x, y := a.NewID(), b.NewID()
		if x != y || !IsGUID(x) {
			t.Fatalf("%s vs %s", x, y)
		}
	}
	s := a.newSecret()
	if len(s) != 40 || s[3:6] != "8Q~" {
		t.Fatalf("secret %q", s)
	}
}

func TestTenantIdentifiers(t *testing.T) {
	for s, want := range map[string]bool{"contoso.onmicrosoft.com": true, "c0c0c0c0-0000-4000-8000-000000000001": true,
		"nodots": false, "bad tenant": false, "": false} {
		if ValidTenantIdentifier(s) != want {
			t.Errorf("%q: want %v", s, want)
		}
	}
}
