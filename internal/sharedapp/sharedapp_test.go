package sharedapp

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
)

func TestManifestFor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kind     integration.Kind
		features []integration.Feature
		want     map[string][]string // resourceAppId -> role IDs, in order
	}{
		{"defender base", integration.KindDefender, nil, map[string][]string{catalog.GraphAppID: {
			"b0afded3-3588-46d8-8b3d-9842eff778da", "472e4a4d-bb4a-4026-98d1-0b0d74cb74a5", "45cc0394-e837-488b-a098-1918f48d186c",
			"df021288-bdef-4463-88db-98f22de89214", "dd98c7f5-2d42-42d3-a0e4-633161547251"}}},
		{"defender live response", integration.KindDefender, []integration.Feature{integration.FeatureLiveResponse}, map[string][]string{
			catalog.GraphAppID: {"b0afded3-3588-46d8-8b3d-9842eff778da", "472e4a4d-bb4a-4026-98d1-0b0d74cb74a5",
				"45cc0394-e837-488b-a098-1918f48d186c", "df021288-bdef-4463-88db-98f22de89214", "dd98c7f5-2d42-42d3-a0e4-633161547251"},
			catalog.DefenderATPAppID: {"1629b959-c0af-42a1-92f0-f6162060bdf1", "ea8291d3-4b9a-44b5-bc3a-6cea3026dc79"}}},
		{"sentinel (Azure roles are not in the manifest)", integration.KindSentinel, nil, map[string][]string{
			catalog.LogAnalyticsAppID: {"e8f6e161-84d0-4cd7-9441-2d46ec9ec3d5"},
			catalog.GraphAppID:        {"bf394140-e372-4bf9-a898-299cfc7564e5"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ManifestFor(catalog.Default(), tc.kind, tc.features)
			if m.SignInAudience != "AzureADMultipleOrgs" {
				t.Fatalf("signInAudience %q", m.SignInAudience)
			}
			got := map[string][]string{}
			for _, r := range m.RequiredResourceAccess {
				for _, a := range r.ResourceAccess {
					if a.Type != "Role" {
						t.Fatalf("type %q, want Role (application permission)", a.Type)
					}
					got[r.ResourceAppID] = append(got[r.ResourceAppID], a.ID)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("resources %v, want %v", got, tc.want)
			}
			for res, ids := range tc.want {
				if !slices.Equal(got[res], ids) {
					t.Fatalf("%s: %v, want %v", res, got[res], ids)
				}
			}
			var back Manifest
			if err := json.Unmarshal([]byte(m.JSON()), &back); err != nil || len(back.RequiredResourceAccess) != len(m.RequiredResourceAccess) {
				t.Fatalf("JSON does not round-trip: %v", err)
			}
		})
	}
}

func TestTenantSteps(t *testing.T) {
	if s := TenantSteps(catalog.Default(), integration.KindDefender, nil); len(s) != 0 {
		t.Fatalf("defender base: %v, want none", s)
	}
	if s := TenantSteps(catalog.Default(), integration.KindDefender, []integration.Feature{integration.FeatureExchange}); len(s) != 1 {
		t.Fatalf("defender exchange: %v, want the directory role", s)
	}
	if s := TenantSteps(catalog.Default(), integration.KindSentinel, nil); len(s) != 1 || !slices.ContainsFunc(s, func(x string) bool {
		return x == `Azure role "Microsoft Sentinel Reader" on the Sentinel workspace's resource group for the shared application's service principal`
	}) {
		t.Fatalf("sentinel: %v", s)
	}
}
