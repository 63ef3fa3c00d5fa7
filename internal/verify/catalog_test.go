package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/catalog"
	"github.com/dropzoneai/dzconnect/internal/integration"
)

// testCatalog is the default catalog with the Graph permissions the
// Defender probes exercise made required (as an organization's override
// would): the rules' tests judge with it.
var testCatalog = catalog.Default().Apply([]catalog.Override{
	{Kind: integration.KindDefender, Value: "SecurityAlert.Read.All", Requirement: catalog.Required},
	{Kind: integration.KindDefender, Value: "SecurityIncident.Read.All", Requirement: catalog.Required},
	{Kind: integration.KindDefender, Value: "User.Read.All", Requirement: catalog.Required},
}, 1)

// Issue 10 item 9a: with the permissions read from Entra, an integration
// with no features must not be judged on the features' permissions.
func TestNoFeaturesJudgedOnBaseOnly(t *testing.T) {
	t.Parallel()
	grants := []Grant{{ResourceAppID: catalog.GraphAppID, Value: "AuditLog.Read.All"}, {ResourceAppID: catalog.GraphAppID, Value: "SecurityAlert.Read.All"},
		{ResourceAppID: catalog.GraphAppID, Value: "SecurityIncident.Read.All"}, {ResourceAppID: catalog.GraphAppID, Value: "User.Read.All"},
		{ResourceAppID: catalog.GraphAppID, Value: "ThreatHunting.Read.All"}}
	for _, fs := range [][]integration.Feature{nil, {}} {
		p := permissionsFromGrants(catalog.Default(), integration.KindDefender, fs, grants)
		if len(p.MissingRequired)+len(p.MissingOptional)+len(p.Extra) != 0 {
			t.Fatalf("features %#v: %+v", fs, p)
		}
		if st := permissionStep(p, nil); st.Status != StepPassed {
			t.Fatalf("features %#v: step %+v", fs, st)
		}
	}
}

func TestGateProbesFollowsCatalog(t *testing.T) {
	t.Parallel()
	optional := map[Probe]bool{}
	for _, pp := range gateProbes(planFor(integration.KindDefender, nil), catalog.Default(), integration.KindDefender).probes {
		optional[pp.probe] = pp.optional
	}
	want := map[Probe]bool{ProbeGraphAlerts: true, ProbeGraphIncidents: true, ProbeGraphSignIns: false, ProbeGraphUsers: true}
	for p, o := range want {
		if optional[p] != o {
			t.Errorf("default catalog: probe %s optional %v, want %v", p, optional[p], o)
		}
	}
	for _, pp := range gateProbes(planFor(integration.KindDefender, nil), testCatalog, integration.KindDefender).probes {
		if pp.optional {
			t.Errorf("override making its permission required: probe %s still optional", pp.probe)
		}
	}
}

func TestEntraExpiry(t *testing.T) {
	t.Parallel()
	key := uuid.New()
	rec := time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)
	entra := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	byKey := integration.Credential{ID: uuid.New(), KeyID: uuid.NullUUID{UUID: key, Valid: true}, EndTime: &rec}
	creds := []AppCredential{{KeyID: uuid.NewString(), End: rec}, {KeyID: key.String(), Hint: "abc", End: entra}}

	end, note, mm := entraExpiry(byKey, nil)
	if end != &rec || note != "" || mm != nil {
		t.Fatalf("not read: %v %q %+v", end, note, mm)
	}
	end, note, mm = entraExpiry(byKey, creds)
	if !end.Equal(entra) || mm == nil || mm.Credential != byKey.ID || !mm.Entra.Equal(entra) || mm.Recorded != &rec ||
		!contains(note, "differs from the recorded one (2028-01-01T00:00:00Z)") {
		t.Fatalf("mismatch: %v %q %+v", end, note, mm)
	}
	same := byKey
	same.EndTime = &entra
	if end, note, mm = entraExpiry(same, creds); !end.Equal(entra) || mm != nil || !contains(note, "confirmed in Entra") {
		t.Fatalf("equal: %v %q %+v", end, note, mm)
	}
	gone := byKey
	gone.KeyID = uuid.NullUUID{UUID: uuid.New(), Valid: true}
	if end, _, mm = entraExpiry(gone, creds); end != &rec || mm != nil {
		t.Fatalf("not in Entra: %v %+v", end, mm)
	}
	// A customer-managed secret without a key ID: matched by its hint when
	// exactly one secret has it.
	byHint := integration.Credential{ID: uuid.New(), Hint: "abc"}
	if end, _, mm = entraExpiry(byHint, creds); end == nil || !end.Equal(entra) || mm == nil || mm.Recorded != nil {
		t.Fatalf("by hint: %v %+v", end, mm)
	}
	if end, _, _ = entraExpiry(byHint, append(creds, AppCredential{KeyID: uuid.NewString(), Hint: "abc", End: rec})); end != nil {
		t.Fatalf("ambiguous hint matched: %v", end)
	}

	// Recording corrects once: not when the record already holds Entra's.
	in := integration.Integration{Credentials: []integration.Credential{{ID: byKey.ID, State: integration.CredentialActive, EndTime: &rec}}}
	c := Check{ExpiryMismatch: &ExpiryMismatch{Credential: byKey.ID, Entra: entra, Recorded: &rec}}
	if !correctsExpiry(c, in) {
		t.Fatal("mismatch not corrected")
	}
	in.Credentials[0].EndTime = &entra
	if correctsExpiry(c, in) {
		t.Fatal("corrected twice")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// countingCatalogs is Catalogs whose override is at rev, counting reads.
type countingCatalogs struct {
	rev   int64
	reads int
}

func (c *countingCatalogs) Base() *catalog.Catalog { return catalog.Default() }

func (c *countingCatalogs) Effective(_ context.Context, _ uuid.UUID) (*catalog.Catalog, error) {
	c.reads++
	return catalog.Default().Apply([]catalog.Override{
		{Kind: integration.KindDefender, Value: "User.Read.All", Requirement: catalog.Required}}, c.rev), nil
}

// A sweep's targets carry the override's revision: a check reads the
// override only when the revision is new (once per organization and
// revision), never when there is none, and a check without it (on demand)
// reads it every time.
func TestCatalogForReadsOverrideByRevision(t *testing.T) {
	t.Parallel()
	cats := &countingCatalogs{}
	s := &Service{catalogs: cats}
	org := uuid.New()
	rev := func(n int64) *int64 { return &n }
	if cat, _ := s.catalogFor(t.Context(), org, rev(0)); cat.Version() != catalog.Default().Version() || cats.reads != 0 {
		t.Fatalf("no override: catalog %s, %d reads", cat.Version(), cats.reads)
	}
	cats.rev = 3
	for range 3 {
		if cat, _ := s.catalogFor(t.Context(), org, rev(3)); !strings.HasSuffix(cat.Version(), "+org.3") {
			t.Fatalf("revision 3: catalog %s", cat.Version())
		}
	}
	if cats.reads != 1 {
		t.Fatalf("revision 3 read %d times, want once", cats.reads)
	}
	cats.rev = 4
	if cat, _ := s.catalogFor(t.Context(), org, rev(4)); !strings.HasSuffix(cat.Version(), "+org.4") || cats.reads != 2 {
		t.Fatalf("revision 4: catalog %s after %d reads", cat.Version(), cats.reads)
	}
	if _, _ = s.catalogFor(t.Context(), uuid.New(), rev(4)); cats.reads != 3 {
		t.Fatalf("another organization: %d reads, want 3", cats.reads)
	}
	for range 2 {
		s.catalogFor(t.Context(), org, nil)
	}
	if cats.reads != 5 {
		t.Fatalf("without a revision: %d reads, want 5", cats.reads)
	}
}
