package msftsim_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

// TestConcurrentMixedTraffic runs token, Graph read/write, ARM and Log
// Analytics calls from many goroutines with random faults on, so -race
// sees the directory, fault injector and recorder under contention.
func TestConcurrentMixedTraffic(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(provisionerRoles, msftsim.AzureRole{Scope: rgScope(), Role: "Owner"})
	reader := e.app("User.Read.All", "log_analytics/Data.Read")
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: rgScope(), Role: "Log Analytics Reader"}, reader.SPObjectID); err != nil {
		t.Fatal(err)
	}
	graphTok := e.mustToken(e.credFor(p), msftsim.ResourceGraph)
	armTok := e.mustToken(e.credFor(p), msftsim.ResourceARM)
	readTok := e.mustToken(e.credFor(reader), msftsim.ResourceGraph)
	laTok := e.mustToken(e.credFor(reader), msftsim.ResourceLogAnalytics)
	e.admin.SetFaults(faults.Config{Scope: faults.Scope{Rule: faults.Rule{
		ServerErrors: &faults.ServerErrors{Rate: 0.05, Status: 503},
		ObjectLag:    &faults.Lag{Reads: 1},
	}}})
	wsURL := e.ep.ARM + rgScope() + "/providers/Microsoft.OperationalInsights/workspaces/" + wsNm + "?api-version=2022-10-01"
	qURL := e.ep.LogAnalytics + "/v1/workspaces/" + e.ws.CustomerID + "/query"
	var wg sync.WaitGroup
	var mu sync.Mutex
	unexpected := map[string]int{}
	note := func(what string, st int, ok ...int) {
		for _, o := range append(ok, 503) {
			if st == o {
				return
			}
		}
		mu.Lock()
		unexpected[fmt.Sprintf("%s:%d", what, st)]++
		mu.Unlock()
	}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				st, _, app := e.do("POST", e.ep.Graph+"/applications", graphTok, map[string]any{"displayName": fmt.Sprintf("app-%d-%d", g, i)})
				note("create", st, 201)
				if st == 201 {
					id := app["id"].(string)
					st, _, _ = e.do("POST", e.ep.Graph+"/applications/"+id+"/addPassword", graphTok, map[string]any{"passwordCredential": map[string]any{}})
					note("addPassword", st, 200, 404) // 404: object lag
					st, _, _ = e.do("GET", e.ep.Graph+"/applications/"+id, graphTok, nil)
					note("get", st, 200, 404)
				}
				st, _, _ = e.do("GET", e.ep.Graph+"/users?$top=2", readTok, nil)
				note("users", st, 200)
				st, _, _ = e.do("GET", wsURL, armTok, nil)
				note("workspace", st, 200)
				st, _, _ = e.do("POST", qURL, laTok, map[string]any{"query": "print 1"})
				note("query", st, 200)
			}
		}()
	}
	wg.Wait()
	if len(unexpected) > 0 {
		t.Fatalf("unexpected statuses: %v", unexpected)
	}
	total := int64(0)
	for _, c := range e.admin.Counters() {
		total += c.Requests
	}
	if total < 8*15*4 {
		t.Fatalf("counted %d requests", total)
	}
}
