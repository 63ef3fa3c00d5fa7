package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/integration"
)

func TestDefaultParses(t *testing.T) {
	c := Default()
	if c.Version() == "" || len(c.Entries()) == 0 {
		t.Fatalf("default catalog %q with %d entries", c.Version(), len(c.Entries()))
	}
}

// The default marks as required only what Dropzone's guide and published
// integration pages name (internal/catalog/default.json cites each): Graph
// AuditLog.Read.All for Defender; Log Analytics Data.Read and a Microsoft
// Sentinel role for Sentinel. Everything else is optional (or an
// alternative).
func TestDefaultRequiresOnlyWhatDropzoneNames(t *testing.T) {
	var required []string
	for _, e := range Default().Entries() {
		if e.Requirement == Required {
			required = append(required, string(e.Kind)+" "+e.Value)
			if !strings.HasPrefix(e.Source, "https://docs.dropzone.ai/") {
				t.Errorf("required entry %s cites %s, not Dropzone's pages", e.label(), e.Source)
			}
		}
	}
	want := []string{"microsoft-365-defender AuditLog.Read.All", "microsoft-sentinel Data.Read", "microsoft-sentinel Microsoft Sentinel Reader"}
	if strings.Join(required, ",") != strings.Join(want, ",") {
		t.Fatalf("required: %v, want %v", required, want)
	}
}

// Issue 10 item 9a: no features is the base integration, not every
// feature. This failed while For treated nil features as "all".
func TestForNoFeaturesIsBaseOnly(t *testing.T) {
	c := Default()
	for _, fs := range [][]integration.Feature{nil, {}} {
		for _, e := range c.For(integration.KindDefender, fs) {
			if e.Feature != "" {
				t.Fatalf("For(defender, %#v) includes feature entry %s", fs, e.label())
			}
		}
	}
	base := c.For(integration.KindDefender, nil)
	withLR := c.For(integration.KindDefender, []integration.Feature{integration.FeatureLiveResponse})
	if got, want := len(withLR)-len(base), 2; got != want {
		t.Fatalf("live_response adds %d entries, want %d", got, want)
	}
	if got := len(c.AllFeatures("")); got != len(c.Entries()) {
		t.Fatalf("AllFeatures has %d entries, want %d", got, len(c.Entries()))
	}
	for _, e := range c.For(integration.KindSentinel, nil) {
		if e.Kind != integration.KindSentinel {
			t.Fatalf("Sentinel catalog contains %+v", e)
		}
	}
}

func TestSecurityEventsIsOptionalAndExplained(t *testing.T) {
	n := 0
	for _, e := range Default().Entries() {
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

func entryJSON(mod func(m map[string]any)) map[string]any {
	m := map[string]any{
		"kind": "microsoft-365-defender", "type": "application", "resource_app_id": GraphAppID, "resource_name": "Microsoft Graph",
		"value": "AuditLog.Read.All", "id": "b0afded3-3588-46d8-8b3d-9842eff778da", "requirement": "required",
		"source": "https://docs.dropzone.ai/x",
	}
	if mod != nil {
		mod(m)
	}
	return m
}

func TestParseRefusesBadFiles(t *testing.T) {
	ok := entryJSON(nil)
	cases := []struct {
		name    string
		doc     any
		wantErr string // "" = valid
	}{
		{"valid", map[string]any{"version": "v1", "entries": []any{ok}}, ""},
		{"no version", map[string]any{"entries": []any{ok}}, "version"},
		{"no entries", map[string]any{"version": "v1", "entries": []any{}}, "entries"},
		{"unknown field", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["scope"] = "x" })}}, "unknown field"},
		{"unknown kind", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["kind"] = "splunk" })}}, `entries[0] (splunk AuditLog.Read.All): kind: unknown kind "splunk"`},
		{"unknown type", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["type"] = "delegated" })}}, `type: unknown type "delegated"`},
		{"unknown requirement", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["requirement"] = "must" })}}, `requirement: unknown requirement "must"`},
		{"bad feature", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["kind"], m["feature"] = "microsoft-sentinel", "exchange" })}}, "feature"},
		{"bad id", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["id"] = "b0afded3" })}}, `entries[0] (microsoft-365-defender AuditLog.Read.All): id: "b0afded3" is not a GUID`},
		{"bad resource", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { m["resource_app_id"] = "graph" })}}, "resource_app_id"},
		{"no source", map[string]any{"version": "v1", "entries": []any{entryJSON(func(m map[string]any) { delete(m, "source") })}}, "source"},
		{"duplicate", map[string]any{"version": "v1", "entries": []any{ok, entryJSON(func(m map[string]any) { m["requirement"] = "optional" })}}, "entries[1] (microsoft-365-defender AuditLog.Read.All): duplicate of entries[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(b)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Parse error %v, want one containing %q", err, tc.wantErr)
			case tc.wantErr == "" && c.Version() != "v1":
				t.Fatalf("version %q", c.Version())
			}
		})
	}
}

func TestLoadFileReplacesDefault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "catalog.json")
	b, _ := json.Marshal(map[string]any{"version": "custom.1", "entries": []any{entryJSON(nil)}})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() != "custom.1" || len(c.For(integration.KindDefender, nil)) != 1 || len(c.For(integration.KindSentinel, nil)) != 0 {
		t.Fatalf("loaded %s with %v", c.Version(), c.Entries())
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestOverrides(t *testing.T) {
	c := Default()
	ovs := []Override{
		{Kind: integration.KindDefender, Value: "SecurityIncident.Read.All", Requirement: Required},
		{Kind: integration.KindDefender, ResourceAppID: strings.ToUpper(GraphAppID), Value: "AuditLog.Read.All", Requirement: Optional},
	}
	if errs := c.CheckOverrides(ovs); len(errs) != 0 {
		t.Fatalf("valid overrides refused: %+v", errs)
	}
	o := c.Apply(ovs, 3)
	if o.Version() != c.Version()+"+org.3" {
		t.Fatalf("version %q", o.Version())
	}
	if r, _ := o.Requirement(integration.KindDefender, GraphAppID, "SecurityIncident.Read.All"); r != Required {
		t.Fatalf("SecurityIncident.Read.All is %s", r)
	}
	if r, _ := o.Requirement(integration.KindDefender, GraphAppID, "AuditLog.Read.All"); r != Optional {
		t.Fatalf("AuditLog.Read.All is %s", r)
	}
	if r, _ := c.Requirement(integration.KindDefender, GraphAppID, "SecurityIncident.Read.All"); r != Optional {
		t.Fatalf("Apply changed the base catalog: %s", r)
	}
	if c.Apply(nil, 0) != c {
		t.Fatal("revision 0 is the catalog itself")
	}
	if got := c.Apply(nil, 2).Version(); got != c.Version()+"+org.2" {
		t.Fatalf("cleared override version %q", got)
	}

	bad := []struct {
		o     Override
		field string
	}{
		{Override{Kind: "splunk", Value: "x", Requirement: Required}, "kind"},
		{Override{Kind: integration.KindDefender, Value: "Nope.Read", Requirement: Required}, "value"},
		{Override{Kind: integration.KindDefender, Value: "AuditLog.Read.All", Requirement: Alternative}, "requirement"},
		{Override{Kind: integration.KindDefender, ResourceAppID: "graph", Value: "AuditLog.Read.All", Requirement: Required}, "resource_app_id"},
		{Override{Kind: integration.KindDefender, ResourceAppID: LogAnalyticsAppID, Value: "AuditLog.Read.All", Requirement: Required}, "value"},
	}
	for _, b := range bad {
		errs := c.CheckOverrides([]Override{b.o})
		if len(errs) != 1 || errs[0].Field != b.field || errs[0].Index != 0 {
			t.Errorf("%+v: errors %+v, want one on %s", b.o, errs, b.field)
		}
	}
	dup := []Override{ovs[0], ovs[0]}
	if errs := c.CheckOverrides(dup); len(errs) != 1 || errs[0].Index != 1 {
		t.Fatalf("duplicate: %+v", errs)
	}
}
