package msftsim_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

const seedJSON = `{
  "seed": 99,
  "tenants": [{
    "id": "c0c0c0c0-0000-4000-8000-000000000001", "displayName": "Contoso", "domain": "contoso.onmicrosoft.com",
    "licences": ["defender", "log_analytics", "entra_id_p1"],
    "workspaces": [{"subscriptionId": "` + subID + `", "resourceGroup": "` + rg + `", "name": "` + wsNm + `"}],
    "policy": {"passwordMaxLifetime": "P180D"},
    "apps": [{"displayName": "Dropzone AI", "clientId": "d0d0d0d0-0000-4000-8000-000000000001",
              "clientSecret": "abc8Q~fixed-demo-secret-value-000000000",
              "roles": ["AuditLog.Read.All", "User.Read.All", "log_analytics/Data.Read"],
              "azureRoles": [{"scope": "/subscriptions/` + subID + `/resourceGroups/` + rg + `", "role": "Microsoft Sentinel Reader"}]}]
  }],
  "provisioners": [{"homeTenant": "aaaaaaaa-0000-4000-8000-000000000001", "displayName": "Dropzone Provisioner",
    "consents": [{"tenant": "c0c0c0c0-0000-4000-8000-000000000001", "roles": ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"],
                  "azureRoles": [{"scope": "/subscriptions/` + subID + `/resourceGroups/` + rg + `", "role": "User Access Administrator"}]}]}],
  "faults": {"routes": {"graph.security.alerts": {"latency": {"min": "1ms", "max": "2ms"}}}}
}`

func TestSeedFileAndStateDir(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seed, []byte(seedJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	sim, err := msftsim.Start(t.Context(), msftsim.Options{SeedFile: seed, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	track(sim)
	t.Cleanup(func() { _ = sim.Close() })
	// A client that trusts only the written CA file reaches the simulator.
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	var ep msftsim.Endpoints
	b, _ := os.ReadFile(filepath.Join(state, "endpoints.json"))
	if err := json.Unmarshal(b, &ep); err != nil || ep.Graph != sim.Endpoints().Graph || ep.CAFile == "" {
		t.Fatalf("endpoints.json: %v %+v", err, ep)
	}
	resp, err := hc.Get(ep.Admin + "/seeded")
	if err != nil {
		t.Fatal(err)
	}
	var seeded msftsim.Seeded
	_ = json.NewDecoder(resp.Body).Decode(&seeded)
	resp.Body.Close()
	if len(seeded.Apps) != 1 || seeded.Apps[0].ClientID != "d0d0d0d0-0000-4000-8000-000000000001" || len(seeded.Provisioners) != 1 {
		t.Fatalf("seeded %+v", seeded)
	}
	if _, err := os.Stat(filepath.Join(state, "seeded.json")); err != nil {
		t.Fatal(err)
	}

	e := &env{t: t, sim: sim, ep: sim.Endpoints(), admin: sim.Admin(), tenant: "c0c0c0c0-0000-4000-8000-000000000001"}
	c := seeded.Apps[0]
	if c.ClientSecret != "abc8Q~fixed-demo-secret-value-000000000" {
		t.Fatalf("secret %q", c.ClientSecret)
	}
	e.mustToken(e.credFor(c), msftsim.ResourceLogAnalytics)
	tok := e.mustToken(e.credFor(c), msftsim.ResourceARM)
	wsURL := e.ep.ARM + rgScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm + "?api-version=2022-10-01"
	if st, _, got := e.do("GET", wsURL, tok, nil); st != 200 {
		t.Fatalf("workspace with seeded role: %d %v", st, got)
	}
	// Unlicensed products in the seeded tenant.
	_, err = e.token(e.credFor(c), msftsim.ResourceExchange)
	aadsts(t, err, 500011)
	if f := e.admin.Faults(); f.Routes["graph.security.alerts"].Latency == nil {
		t.Fatalf("seeded faults missing: %+v", f)
	}
	p := seeded.Provisioners[0]
	p.TenantID = e.tenant
	e.mustToken(e.credFor(p), msftsim.ResourceGraph)
}

func TestAdminHTTPAPI(t *testing.T) {
	e := newEnv(t)
	adm := e.ep.Admin
	call := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		st, _, got := e.do(method, adm+path, "", body)
		if st != want {
			t.Fatalf("%s %s: %d %v", method, path, st, got)
		}
		return got
	}
	ten := call("POST", "/tenants", map[string]any{"displayName": "Fabrikam", "licences": []string{"defender"}}, 200)
	tid := ten["id"].(string)
	call("GET", "/tenants/"+tid, nil, 200)
	call("GET", "/tenants/nope", nil, 404)
	app := call("POST", "/tenants/"+tid+"/apps", map[string]any{"displayName": "Dropzone AI", "roles": []string{"User.Read.All"}, "secretLifetime": "P30D"}, 200)
	clientID, secret := app["clientId"].(string), app["clientSecret"].(string)
	if clientID == "" || len(secret) != 40 {
		t.Fatalf("app %v", app)
	}
	prov := call("POST", "/provisioners", map[string]any{"homeTenant": homeTenant, "displayName": "Provisioner"}, 200)
	cons := call("POST", "/tenants/"+tid+"/consents", map[string]any{"appId": prov["clientId"], "roles": []string{"Application.ReadWrite.All"}}, 200)
	if cons["servicePrincipalObjectId"] == "" {
		t.Fatalf("consent %v", cons)
	}
	call("POST", "/tenants/"+tid+"/workspaces", map[string]any{"subscriptionId": "22222222-2222-4222-8222-222222222222", "resourceGroup": "rg", "name": "ws"}, 200)
	call("POST", "/tenants/"+tid+"/azureRoleAssignments", map[string]any{"scope": "/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/rg",
		"role": "Reader", "principalId": app["servicePrincipalObjectId"]}, 204)
	call("PUT", "/tenants/"+tid+"/licences", map[string]any{"defender": "", "entra_id_p1": ""}, 204)
	call("PUT", "/tenants/"+tid+"/policy", map[string]any{"passwordMaxLifetime": "P90D"}, 204)
	call("PUT", "/tenants/"+tid+"/apps/"+clientID+"/enabled", map[string]any{"enabled": false}, 204)
	_, err := e.token(e.secretCred(tid, clientID, secret), msftsim.ResourceGraph)
	aadsts(t, err, 7000112)
	call("PUT", "/tenants/"+tid+"/apps/"+clientID+"/enabled", map[string]any{"enabled": true}, 204)
	call("PUT", "/tenants/"+tid+"/conditionalAccess", map[string]any{"appId": "*", "blocked": true}, 204)
	_, err = e.token(e.secretCred(tid, clientID, secret), msftsim.ResourceGraph)
	aadsts(t, err, 53003)
	call("PUT", "/tenants/"+tid+"/conditionalAccess", map[string]any{"appId": "*", "blocked": false}, 204)

	// Faults at run time, then counters, log and early retries.
	call("PUT", "/faults", map[string]any{"routes": map[string]any{"graph.users.list": map[string]any{
		"throttle": map[string]any{"every": 1, "count": 1, "retryAfterSeconds": 60}}}}, 200)
	tok := e.mustToken(e.secretCred(tid, clientID, secret), msftsim.ResourceGraph)
	for _, want := range []int{429, 429} {
		if st, _, _ := e.do("GET", e.ep.Graph+"/users", tok, nil); st != want {
			t.Fatalf("users: %d", st)
		}
	}
	early := call("GET", "/early-retries", nil, 200)
	if early["total"].(float64) != 1 {
		t.Fatalf("early retries %v", early)
	}
	cnt := call("GET", "/counters", nil, 200)
	if len(cnt["routes"].([]any)) == 0 {
		t.Fatalf("counters %v", cnt)
	}
	st, _, _ := e.do("GET", adm+"/requests?limit=2", "", nil)
	if st != 200 {
		t.Fatalf("requests %d", st)
	}
	now := call("POST", "/clock/advance", map[string]any{"by": "31 days"}, 400)
	_ = now
	adv := call("POST", "/clock/advance", map[string]any{"by": "744h"}, 200)
	if adv["now"] == nil {
		t.Fatalf("advance %v", adv)
	}
	_, err = e.token(e.secretCred(tid, clientID, secret), msftsim.ResourceGraph)
	aadsts(t, err, 7000222) // P30D secret, 31 days later
	call("POST", "/reset-counters", nil, 204)
	if n := e.admin.TotalEarlyRetries(); n != 0 {
		t.Fatalf("reset left %d", n)
	}
	if f := call("PUT", "/faults?profile=replication", nil, 200); f["secretLag"] == nil {
		t.Fatalf("profile: %v", f)
	}
	call("PUT", "/faults?profile=nope", nil, 400)
	call("GET", "/faults", nil, 200)
	call("GET", "/clock", nil, 200)
	call("GET", "/endpoints", nil, 200)
}

func TestStateDirSurvivesRestart(t *testing.T) {
	state := t.TempDir()
	sf, err := msftsim.LoadSeedFile("../../cmd/msftsim/seed.example.json")
	if err != nil {
		t.Fatal(err)
	}
	start := func() *msftsim.Sim {
		sim, err := msftsim.Start(t.Context(), msftsim.Options{SeedData: sf, StateDir: state})
		if err != nil {
			t.Fatal(err)
		}
		return sim
	}
	first := start()
	e := &env{t: t, sim: first, ep: first.Endpoints(), admin: first.Admin()}
	c := first.Seeded().Apps[0]
	tok := e.mustToken(e.credFor(c), msftsim.ResourceGraph)
	ca := string(first.CAPEM())
	_ = first.Close()

	second := start()
	defer second.Close()
	if string(second.CAPEM()) != ca {
		t.Fatal("CA changed across restart")
	}
	if second.Seeded().Apps[0].ClientSecret != c.ClientSecret || second.Seeded().Tenants[0].ID != first.Seeded().Tenants[0].ID {
		t.Fatal("seeded state differs across restart")
	}
	e2 := &env{t: t, sim: second, ep: second.Endpoints(), admin: second.Admin()}
	if st, _, body := e2.do("GET", e2.ep.Graph+"/users", tok, nil); st != 200 {
		t.Fatalf("token from before the restart: %d %v", st, body)
	}
}
