package msftsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoft/kiota-abstractions-go/store"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/models/security"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// sdkGaps are properties Graph v1.0 answers (Microsoft's documented
// examples show them) that msgraph-sdk-go's v1.0 models do not declare, so
// the SDK keeps them in AdditionalData. msftsim sends them because Graph
// does; every other property the SDK would drop fails the test.
var sdkGaps = map[string]string{
	"principalOrganizationId": "unifiedRoleAssignment: https://learn.microsoft.com/en-us/graph/api/rbacapplication-post-roleassignments?view=graph-rest-1.0 (Example 3)",
	"resourceScope":           "unifiedRoleAssignment: same example",
	"publisherName":           "servicePrincipal: https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get?view=graph-rest-1.0 (Example 1)",
	// The throttling body's innerError members (the SDK's InnerError has
	// date, request-id and client-request-id only).
	"error.innerError.code":    "https://learn.microsoft.com/en-us/graph/throttling (Sample response)",
	"error.innerError.message": "same sample",
	"error.innerError.status":  "same sample",
}

// docOnly are parts of Microsoft's examples msftsim does not reproduce,
// each with its reason; the shape comparison skips them.
var docOnly = map[string]string{
	// The incident example's comments use createdBy/createdTime, which no
	// v1.0 model has (alertComment: createdByDisplayName, createdDateTime).
	"comments[].createdBy":                                    "doc example differs from the v1.0 alertComment model",
	"comments[].createdTime":                                  "doc example differs from the v1.0 alertComment model",
	"evidence[#microsoft.graph.security.registryKeyEvidence]": "registry evidence is not simulated",
}

// rawGraph sends one Graph request and returns status, headers and body.
func (e *env) rawGraph(method, path, token string, body any, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), method, e.ep.Graph+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.sim.HTTPClient().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// decodeSDK parses body with the SDK's model factory, as the SDK's
// request adapter does, and returns the model and the properties it kept
// in AdditionalData (paths; @odata annotations excluded).
func decodeSDK(t *testing.T, body []byte, f serialization.ParsableFactory) (serialization.Parsable, []string) {
	t.Helper()
	node, err := jsonser.NewJsonParseNode(body)
	if err != nil {
		t.Fatalf("parse node: %v\n%s", err, body)
	}
	v, err := node.GetObjectValue(f)
	if err != nil {
		t.Fatalf("GetObjectValue: %v\n%s", err, body)
	}
	var dropped []string
	walkDropped("", v, &dropped)
	sort.Strings(dropped)
	return v, dropped
}

// walkDropped collects the AdditionalData keys of a parsed model and of
// every model reachable from it (through its backing store).
func walkDropped(path string, v any, out *[]string) {
	if v == nil {
		return
	}
	if bm, ok := v.(store.BackedModel); ok && bm.GetBackingStore() != nil {
		for k, val := range bm.GetBackingStore().Enumerate() {
			if k == "additionalData" {
				if m, ok := val.(map[string]any); ok {
					for ak := range m {
						if !strings.Contains(ak, "@odata.") {
							*out = append(*out, join(path, ak))
						}
					}
				}
				continue
			}
			walkDropped(join(path, k), val, out)
		}
		return
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		for i := range rv.Len() {
			walkDropped(path, rv.Index(i).Interface(), out)
		}
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// checkDropped fails on dropped properties that are not known SDK gaps.
func checkDropped(t *testing.T, what string, dropped []string, also map[string]string) {
	t.Helper()
	for _, p := range dropped {
		last := p[strings.LastIndex(p, ".")+1:]
		if _, ok := sdkGaps[p]; ok {
			continue
		}
		if _, ok := sdkGaps[last]; ok {
			continue
		}
		if _, ok := also[last]; ok {
			continue
		}
		gap := false
		for k := range sdkGaps {
			gap = gap || strings.HasSuffix(p, "."+strings.TrimPrefix(k, "error."))
		}
		if gap {
			continue
		}
		t.Errorf("%s: msgraph-sdk-go drops %q into AdditionalData (a property its v1.0 model does not have)", what, p)
	}
}

// simResponses are msftsim's answers to every Graph call dzconnect makes
// (internal/microsoft), keyed by name, plus the SDK model each decodes to.
type simResponse struct {
	body    []byte
	factory serialization.ParsableFactory
}

func captureGraph(t *testing.T) (*env, map[string]simResponse) {
	t.Helper()
	e := newEnv(t)
	c := e.app("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Application.Read.All", "Policy.Read.All",
		"RoleManagement.ReadWrite.Directory", "SecurityAlert.Read.All", "SecurityIncident.Read.All", "AuditLog.Read.All",
		"User.Read.All", "Organization.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	if _, err := e.admin.AddAppPolicy(e.tenant, msftsim.AppPolicySpec{DisplayName: "Secrets 90 days",
		PolicySpec: msftsim.PolicySpec{PasswordMaxLifetime: "P90D"}}); err != nil {
		t.Fatal(err)
	}
	out := map[string]simResponse{}
	get := func(name, path string, f serialization.ParsableFactory, want int, method string, body any) (http.Header, map[string]any) {
		t.Helper()
		st, h, b := e.rawGraph(method, path, tok, body)
		if st != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, b)
		}
		out[name] = simResponse{b, f}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return h, m
	}
	h, app := get("applications.create", "/applications", models.CreateApplicationFromDiscriminatorValue, 201, "POST",
		map[string]any{"displayName": "My application"})
	if loc := h.Get("Location"); !strings.Contains(loc, app["id"].(string)) {
		t.Errorf("POST /applications: Location %q does not name the new application", loc)
	}
	appID, objID := app["appId"].(string), app["id"].(string)
	get("applications.get", "/applications/"+objID, models.CreateApplicationFromDiscriminatorValue, 200, "GET", nil)
	get("applications.list", "/applications?$filter=appId%20eq%20'"+appID+"'", models.CreateApplicationCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("applications.addPassword", "/applications/"+objID+"/addPassword", models.CreatePasswordCredentialFromDiscriminatorValue, 200, "POST",
		map[string]any{"passwordCredential": map[string]any{"displayName": "dz"}})
	h, sp := get("servicePrincipals.create", "/servicePrincipals", models.CreateServicePrincipalFromDiscriminatorValue, 201, "POST",
		map[string]any{"appId": appID})
	if h.Get("Location") == "" {
		t.Error("POST /servicePrincipals: no Location header")
	}
	_, graphSP := get("servicePrincipals.get", "/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')",
		models.CreateServicePrincipalFromDiscriminatorValue, 200, "GET", nil)
	get("servicePrincipals.list", "/servicePrincipals?$filter=appId%20eq%20'"+appID+"'", models.CreateServicePrincipalCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	roles, _ := graphSP["appRoles"].([]any)
	var roleID string
	for _, r := range roles {
		if r.(map[string]any)["value"] == "User.Read.All" {
			roleID = r.(map[string]any)["id"].(string)
		}
	}
	get("appRoleAssignedTo.create", "/servicePrincipals/"+graphSP["id"].(string)+"/appRoleAssignedTo", models.CreateAppRoleAssignmentFromDiscriminatorValue, 201, "POST",
		map[string]any{"principalId": sp["id"], "resourceId": graphSP["id"], "appRoleId": roleID})
	get("appRoleAssignments.list", "/servicePrincipals/"+sp["id"].(string)+"/appRoleAssignments", models.CreateAppRoleAssignmentCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("policies.default", "/policies/defaultAppManagementPolicy", models.CreateTenantAppManagementPolicyFromDiscriminatorValue, 200, "GET", nil)
	get("policies.list", "/policies/appManagementPolicies", models.CreateAppManagementPolicyCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	users := get2(t, e, tok, "/users?$top=1")
	userID := users[0].(map[string]any)["id"].(string)
	h, _ = get("roleAssignments.create", "/roleManagement/directory/roleAssignments", models.CreateUnifiedRoleAssignmentFromDiscriminatorValue, 201, "POST",
		map[string]any{"principalId": userID, "roleDefinitionId": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "directoryScopeId": "/" + objID})
	if h.Get("Location") == "" {
		t.Error("POST roleAssignments: no Location header")
	}
	get("roleAssignments.list", "/roleManagement/directory/roleAssignments?$filter=principalId%20eq%20'"+userID+"'", models.CreateUnifiedRoleAssignmentCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("security.alerts", "/security/alerts_v2", security.CreateAlertCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("security.incidents", "/security/incidents", security.CreateIncidentCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("auditLogs.signIns", "/auditLogs/signIns", models.CreateSignInCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("users.list", "/users", models.CreateUserCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("organization.list", "/organization", models.CreateOrganizationCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("applications.delete", "/applications/"+objID, nil, 204, "DELETE", nil)
	delete(out, "applications.delete")
	// The SDK's typed cast (DeletedItems().GraphApplication()) reads an application collection.
	get("deletedItems.applications", "/directory/deletedItems/microsoft.graph.application", models.CreateApplicationCollectionResponseFromDiscriminatorValue, 200, "GET", nil)
	get("deletedItems.get", "/directory/deletedItems/"+objID, models.CreateDirectoryObjectFromDiscriminatorValue, 200, "GET", nil)

	// A throttled answer: Graph's documented 429 body.
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Routes: map[string]faults.Rule{"graph.organization.list": {Throttle: &faults.Throttle{Every: 1, Count: 1, RetryAfterSeconds: 1}}}}})
	st, h, b := e.rawGraph("GET", "/organization", tok, nil)
	if st != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("throttled GET /organization: %d (Retry-After %q): %s", st, h.Get("Retry-After"), b)
	}
	out["throttled"] = simResponse{b, odataerrors.CreateODataErrorFromDiscriminatorValue}
	e.admin.SetFaults(faults.Config{})
	return e, out
}

func get2(t *testing.T, e *env, tok, path string) []any {
	t.Helper()
	st, _, b := e.rawGraph("GET", path, tok, nil)
	var m map[string]any
	if st != 200 || json.Unmarshal(b, &m) != nil {
		t.Fatalf("GET %s: %d %s", path, st, b)
	}
	v, _ := m["value"].([]any)
	if len(v) == 0 {
		t.Fatalf("GET %s: empty", path)
	}
	return v
}

// TestSDKDecodesEveryResponse decodes every msftsim answer dzconnect's
// Graph calls meet with msgraph-sdk-go's own models and fails on any
// property the SDK would not read (kept in AdditionalData), except the
// documented ones the SDK's v1.0 models lack (sdkGaps).
func TestSDKDecodesEveryResponse(t *testing.T) {
	_, got := captureGraph(t)
	names := make([]string, 0, len(got))
	for k := range got {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		r := got[name]
		v, dropped := decodeSDK(t, r.body, r.factory)
		checkDropped(t, name, dropped, nil)
		if name == "security.alerts" {
			checkEvidence(t, v.(security.AlertCollectionResponseable))
		}
	}
}

// checkEvidence asserts the SDK reads alert evidence as its concrete
// polymorphic types (from @odata.type), with their own properties.
func checkEvidence(t *testing.T, alerts security.AlertCollectionResponseable) {
	t.Helper()
	if len(alerts.GetValue()) == 0 {
		t.Fatal("no alerts")
	}
	seen := map[string]bool{}
	for _, ev := range alerts.GetValue()[0].GetEvidence() {
		switch x := ev.(type) {
		case security.DeviceEvidenceable:
			seen["device"] = x.GetMdeDeviceId() != nil && x.GetDeviceDnsName() != nil
		case security.UserEvidenceable:
			seen["user"] = x.GetUserAccount() != nil && x.GetUserAccount().GetUserPrincipalName() != nil
		case security.IpEvidenceable:
			seen["ip"] = x.GetIpAddress() != nil
		case security.FileEvidenceable:
			seen["file"] = x.GetFileDetails() != nil && x.GetFileDetails().GetSha256() != nil
		case security.ProcessEvidenceable:
			seen["process"] = x.GetProcessId() != nil && x.GetImageFile() != nil
		default:
			t.Errorf("evidence decoded as %T", ev)
		}
	}
	for _, k := range []string{"device", "user", "ip", "file", "process"} {
		if !seen[k] {
			t.Errorf("alert evidence: no %sEvidence decoded with its properties (%v)", k, seen)
		}
	}
}

// TestDocExamplesMatchShapes decodes Microsoft's documented example
// responses (testdata/graphdocs, each with its source URL) with the SDK's
// models and compares their shape (property names and JSON types) with
// msftsim's answer to the same call: a property the example has must be in
// msftsim's answer, with the same type unless one of them is null.
func TestDocExamplesMatchShapes(t *testing.T) {
	_, got := captureGraph(t)
	cases := []struct {
		file, sim string
		factory   serialization.ParsableFactory
		item      bool // compare the example with the sim's first list item
	}{
		{"application-create.json", "applications.create", models.CreateApplicationFromDiscriminatorValue, false},
		{"serviceprincipal-get.json", "servicePrincipals.create", models.CreateServicePrincipalFromDiscriminatorValue, false},
		{"security-alert-get.json", "security.alerts", security.CreateAlertFromDiscriminatorValue, true},
		{"security-incident-get.json", "security.incidents", security.CreateIncidentFromDiscriminatorValue, true},
		{"signin-list.json", "auditLogs.signIns", models.CreateSignInCollectionResponseFromDiscriminatorValue, false},
		{"unifiedroleassignment-post.json", "roleAssignments.create", models.CreateUnifiedRoleAssignmentFromDiscriminatorValue, false},
		{"throttling-429.json", "throttled", odataerrors.CreateODataErrorFromDiscriminatorValue, false},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "graphdocs", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Source string          `json:"source"`
				Body   json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil || doc.Source == "" {
				t.Fatalf("%s: %v (source %q)", tc.file, err, doc.Source)
			}
			_, dropped := decodeSDK(t, doc.Body, tc.factory)
			checkDropped(t, "example "+tc.file, dropped, map[string]string{"createdBy": "", "createdTime": ""})

			var want, have any
			_ = json.Unmarshal(doc.Body, &want)
			if err := json.Unmarshal(got[tc.sim].body, &have); err != nil {
				t.Fatalf("sim %s: %v", tc.sim, err)
			}
			if tc.item {
				vals, _ := have.(map[string]any)["value"].([]any)
				if len(vals) == 0 {
					t.Fatalf("sim %s: no items", tc.sim)
				}
				have = vals[0]
			}
			ws, hs := shapeOf(want), shapeOf(have)
			for _, p := range sortedKeys(ws) {
				if skipped(p) || emptyParent(p, hs) {
					continue
				}
				ht, ok := hs[p]
				if !ok {
					t.Errorf("%s: msftsim's answer lacks %s (%s in %s)", tc.file, p, ws[p], doc.Source)
					continue
				}
				if wt := ws[p]; wt != ht && wt != "null" && ht != "null" && wt != "empty" && ht != "empty" {
					t.Errorf("%s: %s is %s in msftsim's answer, %s in Microsoft's example", tc.file, p, ht, wt)
				}
			}
		})
	}
}

// shapeOf maps each property path to its JSON type. Array items share the
// path "x[]"; items with an @odata.type are keyed "x[#type]" (polymorphic
// collections such as alert evidence); "x[]" alone marks an array.
func shapeOf(v any) map[string]string {
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if path != "" {
				out[path] = "object"
			}
			for k, val := range x {
				if strings.HasPrefix(k, "@odata.") {
					continue
				}
				walk(join(path, k), val)
			}
		case []any:
			out[path] = "array"
			if len(x) == 0 {
				out[path+"[]"] = "empty"
			}
			for _, it := range x {
				if m, ok := it.(map[string]any); ok {
					if typ, ok := m["@odata.type"].(string); ok {
						walk(path+"["+typ+"]", it)
						continue
					}
				}
				walk(path+"[]", it)
			}
		case string:
			out[path] = "string"
		case float64:
			out[path] = "number"
		case bool:
			out[path] = "boolean"
		case nil:
			out[path] = "null"
		default:
			out[path] = fmt.Sprintf("%T", v)
		}
	}
	walk("", v)
	return out
}

func skipped(p string) bool {
	for k := range docOnly {
		if p == k || strings.HasPrefix(p, k+".") || strings.HasSuffix(p, "."+k) || strings.Contains(p, "."+k+".") {
			return true
		}
	}
	return false
}

// emptyParent: the example's nested properties cannot be compared where
// msftsim's answer has an empty array or null at an enclosing path.
func emptyParent(p string, hs map[string]string) bool {
	for i := range len(p) {
		if p[i] != '.' && p[i] != '[' {
			continue
		}
		parent := p[:i]
		if hs[parent+"[]"] == "empty" || hs[parent] == "null" {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
