package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

func TestFitLifetime(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		requested time.Duration
		policy    string
		want      time.Duration
		err       bool
	}{
		{0, "", MaxSecretLifetime, false},
		{90 * day, "", 90 * day, false},
		{3 * 365 * day, "", MaxSecretLifetime, false},
		{0, "P180D", 180*day - skew, false},
		{30 * day, "P180D", 30 * day, false},
		{0, "P1Y", 365*day - skew, false},
		{0, "P1M", 30*day - skew, false},
		{0, "PT4H30M", 4*time.Hour + 30*time.Minute - skew, false},
		{0, "PT5M", 0, true},
		{0, "bogus", 0, true},
	} {
		got, err := FitLifetime(tc.requested, tc.policy)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("FitLifetime(%v, %q) = %v, %v; want %v (error %v)", tc.requested, tc.policy, got, err, tc.want, tc.err)
		}
	}
}

func TestParseWorkspaceID(t *testing.T) {
	sub := uuid.New()
	w, err := ParseWorkspaceID("/subscriptions/" + sub.String() + "/resourceGroups/rg-1/providers/Microsoft.OperationalInsights/workspaces/ws-1")
	if err != nil || w.SubscriptionID != sub || w.ResourceGroup != "rg-1" || w.Name != "ws-1" {
		t.Fatalf("got %+v, %v", w, err)
	}
	if w.Scope() != "/subscriptions/"+sub.String()+"/resourceGroups/rg-1" || !strings.HasSuffix(w.ID(), "/workspaces/ws-1") {
		t.Fatalf("scope %s id %s", w.Scope(), w.ID())
	}
	for _, bad := range []string{"", "/subscriptions/x/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w",
		"/subscriptions/" + sub.String() + "/resourceGroups/rg", "/subscriptions/" + sub.String() + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s"} {
		if _, err := ParseWorkspaceID(bad); err == nil {
			t.Errorf("ParseWorkspaceID(%q) accepted", bad)
		}
	}
}

func TestUniqueNameStable(t *testing.T) {
	org, tn := uuid.New(), uuid.New()
	a := UniqueName(org, tn, integration.KindDefender, 1)
	if a != UniqueName(org, tn, integration.KindDefender, 1) {
		t.Fatal("not stable")
	}
	for _, other := range []string{UniqueName(org, tn, integration.KindSentinel, 1), UniqueName(org, uuid.New(), integration.KindDefender, 1),
		UniqueName(uuid.New(), tn, integration.KindDefender, 1), UniqueName(org, tn, integration.KindDefender, 2)} {
		if other == a {
			t.Fatalf("collision: %s", a)
		}
	}
	for _, r := range a {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			t.Fatalf("%q has %q", a, r)
		}
	}
	if len(a) > 48 {
		t.Fatalf("%q is long", a)
	}
}

func TestPasswordTagAndCredentialID(t *testing.T) {
	op := uuid.New()
	if a, b := CredentialID(op), CredentialID(op); a != b || a == CredentialID(uuid.New()) {
		t.Fatal("credential ID is not a function of the operation")
	}
	if !strings.Contains(PasswordTag(op), op.String()) {
		t.Fatal("tag does not name the operation")
	}
}
