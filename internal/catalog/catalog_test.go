package catalog

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

func TestEntriesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Entries {
		key := string(e.Kind) + "/" + e.ResourceAppID + "/" + e.Value
		if seen[key] {
			t.Errorf("duplicate entry %s", key)
		}
		seen[key] = true
		if _, err := uuid.Parse(e.ID); err != nil {
			t.Errorf("%s: id %q is not a GUID", key, e.ID)
		}
		if e.Type == TypeApplication {
			if _, err := uuid.Parse(e.ResourceAppID); err != nil {
				t.Errorf("%s: application permission without resource app ID", key)
			}
		}
		if e.Feature != "" && e.Kind != integration.KindDefender {
			t.Errorf("%s: features exist only for Defender", key)
		}
	}
}

func TestForFiltersByKindAndFeature(t *testing.T) {
	base := For(integration.KindDefender, []integration.Feature{})
	for _, e := range base {
		if e.Feature != "" || e.Kind != integration.KindDefender {
			t.Fatalf("base Defender catalog contains %+v", e)
		}
	}
	withLR := For(integration.KindDefender, []integration.Feature{integration.FeatureLiveResponse})
	if got, want := len(withLR)-len(base), 2; got != want {
		t.Fatalf("live_response adds %d entries, want %d", got, want)
	}
	if got := len(For("", nil)); got != len(Entries) {
		t.Fatalf("unfiltered catalog has %d entries, want %d", got, len(Entries))
	}
	for _, e := range For(integration.KindSentinel, nil) {
		if e.Kind != integration.KindSentinel {
			t.Fatalf("Sentinel catalog contains %+v", e)
		}
	}
}

// SecurityEvents.Read.All no longer stands for an API a check can prove
// (the legacy alerts API is retired): it is optional, and its entry says
// what it still grants and cites Microsoft.
func TestSecurityEventsIsOptionalAndExplained(t *testing.T) {
	n := 0
	for _, e := range Entries {
		if e.Value != "SecurityEvents.Read.All" {
			continue
		}
		n++
		if e.Requirement != Optional || !strings.Contains(e.Note, "retired") || !strings.Contains(e.Note, "secureScores") ||
			!strings.Contains(e.Note, "https://learn.microsoft.com/en-us/graph/alertsv1-alertsv2-migration") {
			t.Fatalf("entry %+v", e)
		}
	}
	if n == 0 {
		t.Fatal("no SecurityEvents.Read.All entry")
	}
}
