package msftsim_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/applications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// TestAdvancedQueries: $count, $orderby and startswith on the directory
// collections as "Advanced query capabilities on Microsoft Entra ID
// objects" documents them: with ConsistencyLevel: eventual (and $count=true
// where required) they answer; without, $count is ignored as a parameter
// and refused as a segment, and advanced-only sorting is refused.
func TestAdvancedQueries(t *testing.T) {
	e := newEnv(t)
	c := e.app("Application.ReadWrite.All", "User.Read.All")
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	for _, n := range []string{"Box Sync", "Alpha", "box drive", "Zeta"} {
		if st, _, b := e.rawGraph("POST", "/applications", tok, map[string]any{"displayName": n}); st != 201 {
			t.Fatalf("create %s: %d %s", n, st, b)
		}
	}
	list := func(query string, eventual bool) (int, map[string]any) {
		t.Helper()
		var hdr []string
		if eventual {
			hdr = []string{"ConsistencyLevel", "eventual"}
		}
		st, _, b := e.rawGraph("GET", "/applications?"+query, tok, nil, hdr...)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return st, m
	}
	names := func(m map[string]any) []string {
		var out []string
		for _, v := range m["value"].([]any) {
			out = append(out, v.(map[string]any)["displayName"].(string))
		}
		return out
	}
	q := url.Values{"$filter": {"startswith(displayName,'box')"}}
	st, m := list(q.Encode(), false)
	if st != 200 || len(m["value"].([]any)) != 2 {
		t.Fatalf("startswith without advanced parameters (works by default): %d %v", st, m)
	}
	if _, ok := m["@odata.count"]; ok {
		t.Error("@odata.count without $count=true")
	}
	q.Set("$count", "true")
	if _, m = list(q.Encode(), false); m["@odata.count"] != nil {
		t.Errorf("$count=true without ConsistencyLevel is silently ignored, got @odata.count %v", m["@odata.count"])
	}
	if _, m = list(q.Encode(), true); m["@odata.count"] != float64(2) {
		t.Errorf("@odata.count = %v, want 2", m["@odata.count"])
	}
	// $orderby on applications needs the advanced parameters.
	ob := url.Values{"$orderby": {"displayName desc"}}
	if st, m = list(ob.Encode(), true); st != 400 || errCode(m) != "Request_UnsupportedQuery" {
		t.Errorf("$orderby without $count=true: %d %v", st, m)
	}
	ob.Set("$count", "true")
	st, m = list(ob.Encode(), true)
	if st != 200 || strings.Join(names(m), ",") != "Zeta,Dropzone AI,Box Sync,box drive,Alpha" || m["@odata.count"] != float64(5) {
		t.Errorf("$orderby=displayName desc: %d %v count %v", st, names(m), m["@odata.count"])
	}
	// $filter with $orderby: advanced only.
	both := url.Values{"$orderby": {"displayName"}, "$filter": {"startswith(displayName,'box')"}}
	if st, _ = list(both.Encode(), true); st != 400 {
		t.Errorf("$filter with $orderby without $count=true: %d", st)
	}
	both.Set("$count", "true")
	if st, m = list(both.Encode(), true); st != 200 || strings.Join(names(m), ",") != "box drive,Box Sync" {
		t.Errorf("$filter with $orderby: %d %v", st, m)
	}
	// The $count segment: text/plain with the header, 400 without.
	st, h, b := e.rawGraph("GET", "/applications/$count", tok, nil, "ConsistencyLevel", "eventual")
	if n, _ := strconv.Atoi(string(b)); st != 200 || n != 5 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("/applications/$count: %d %q %s", st, b, h.Get("Content-Type"))
	}
	st, _, b = e.rawGraph("GET", "/applications/$count", tok, nil)
	var em map[string]any
	_ = json.Unmarshal(b, &em)
	if st != 400 || errCode(em) != "Request_BadRequest" {
		t.Errorf("/applications/$count without ConsistencyLevel: %d %s", st, b)
	}
	for _, p := range []string{"/servicePrincipals/$count", "/users/$count"} {
		if st, _, b := e.rawGraph("GET", p, tok, nil, "ConsistencyLevel", "eventual"); st != 200 {
			t.Errorf("%s: %d %s", p, st, b)
		}
	}
	// users sort by displayName by default (no advanced parameters).
	st, _, b = e.rawGraph("GET", "/users?$orderby=displayName%20desc&$filter=startswith(userPrincipalName,'user')&$count=true", tok, nil, "ConsistencyLevel", "eventual")
	if st != 200 {
		t.Errorf("users $orderby: %d %s", st, b)
	}
	if st, _, _ = e.rawGraph("GET", "/users?$orderby=displayName", tok, nil); st != 200 {
		t.Errorf("users $orderby=displayName works by default: %d", st)
	}

	// The SDK sends the same through its query parameters and headers.
	g := e.graph(e.credFor(c))
	cnt, top := true, int32(10)
	filter, order := "startswith(displayName,'box')", []string{"displayName"}
	cfg := &applications.ApplicationsRequestBuilderGetRequestConfiguration{
		QueryParameters: &applications.ApplicationsRequestBuilderGetQueryParameters{Count: &cnt, Filter: &filter, Orderby: order, Top: &top}}
	cfg.Headers = headersEventual()
	res, err := g.Applications().Get(t.Context(), cfg)
	if err != nil {
		t.Fatalf("SDK advanced query: %v", err)
	}
	if res.GetOdataCount() == nil || *res.GetOdataCount() != 2 || len(res.GetValue()) != 2 || *res.GetValue()[0].GetDisplayName() != "box drive" {
		t.Errorf("SDK advanced query: count %v, %d items", res.GetOdataCount(), len(res.GetValue()))
	}
}

// TestDirectoryRolePrincipals: users, role-assignable groups and service
// principals may hold directory roles; answers carry principalOrganizationId
// and resourceScope, and a 201 its Location.
func TestDirectoryRolePrincipals(t *testing.T) {
	e := newEnv(t)
	c := e.app("RoleManagement.ReadWrite.Directory")
	g := e.graph(e.credFor(c))
	u, err := e.admin.AddUser(e.tenant, msftsim.User{DisplayName: "Ada Admin"})
	if err != nil {
		t.Fatal(err)
	}
	grp, err := e.admin.AddGroup(e.tenant, msftsim.Group{DisplayName: "Helpdesk", IsAssignableToRole: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.admin.AddGroup(e.tenant, msftsim.Group{DisplayName: "Everyone"})
	if err != nil {
		t.Fatal(err)
	}
	const helpdeskAdmin = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
	for _, p := range []string{u.ID, grp.ID, c.SPObjectID} {
		ra := models.NewUnifiedRoleAssignment()
		ra.SetPrincipalId(&p)
		ra.SetRoleDefinitionId(ptr(helpdeskAdmin))
		ra.SetDirectoryScopeId(ptr("/"))
		got, err := g.RoleManagement().Directory().RoleAssignments().Post(t.Context(), ra, nil)
		if err != nil {
			t.Fatalf("assign to %s: %v", p, err)
		}
		ad := got.GetAdditionalData()
		str := func(k string) string {
			if s, ok := ad[k].(*string); ok && s != nil {
				return *s
			}
			return ""
		}
		if str("principalOrganizationId") != e.tenant || str("resourceScope") != "/" {
			t.Errorf("principal %s: additional data %v", p, ad)
		}
	}
	ra := models.NewUnifiedRoleAssignment()
	ra.SetPrincipalId(&plain.ID)
	ra.SetRoleDefinitionId(ptr(helpdeskAdmin))
	ra.SetDirectoryScopeId(ptr("/"))
	_, err = g.RoleManagement().Directory().RoleAssignments().Post(t.Context(), ra, nil)
	_ = odata(t, err, 400, "Request_BadRequest")
}

func headersEventual() *abstractions.RequestHeaders {
	h := abstractions.NewRequestHeaders()
	h.Add("ConsistencyLevel", "eventual")
	return h
}
