package faults

import (
	"encoding/json"
	"testing"
	"time"
)

func TestPrecedenceAndPrefixes(t *testing.T) {
	in := NewInjector(1)
	in.Set(Config{
		Scope: Scope{
			Rule: Rule{ServerErrors: &ServerErrors{Every: 1, Status: 500}},
			Routes: map[string]Rule{
				"graph.*":          {ServerErrors: &ServerErrors{Every: 1, Status: 502}},
				"graph.users.list": {ServerErrors: &ServerErrors{Every: 1, Status: 503}},
			},
		},
		Tenants: map[string]Scope{"T1": {Routes: map[string]Rule{"graph.users.list": {ServerErrors: &ServerErrors{Every: 1, Status: 504}}}}},
	})
	cases := []struct {
		route, tenant string
		want          int
	}{
		{"arm.workspaces.get", "x", 500},
		{"graph.users.get", "x", 502},
		{"graph.users.list", "x", 503},
		{"graph.users.list", "t1", 504}, // tenant keys are case-insensitive
	}
	for _, c := range cases {
		if d := in.Decide(c.route, c.tenant, "app"); d.Status != c.want || d.Kind != KindServerError {
			t.Errorf("%s/%s: got %+v, want %d", c.route, c.tenant, d, c.want)
		}
	}
}

func TestEveryCountAndEarlyRetry(t *testing.T) {
	in := NewInjector(1)
	now := time.Unix(1000, 0)
	in.wallNow = func() time.Time { return now }
	in.Set(Config{Scope: Scope{Routes: map[string]Rule{"graph.users.list": {Throttle: &Throttle{Every: 2, Count: 1, RetryAfterSeconds: 3}}}}})
	if d := in.Decide("graph.users.list", "t", "a"); d.Status != 0 {
		t.Fatalf("1st: %+v", d)
	}
	if d := in.Decide("graph.users.list", "t", "a"); d.Status != 429 || d.RetryAfter != 3 || d.Kind != KindThrottle {
		t.Fatalf("2nd: %+v", d)
	}
	// Another API of the same client is not inside the window.
	if d := in.Decide("entra.token", "t", "a"); d.Status != 0 {
		t.Fatalf("other API: %+v", d)
	}
	now = now.Add(time.Second)
	if d := in.Decide("graph.users.get", "t", "a"); d.Status != 429 || d.Kind != KindEarlyRetry || d.RetryAfter != 2 {
		t.Fatalf("early: %+v", d)
	}
	now = now.Add(2 * time.Second)
	for i := range 4 { // count 1 reached: no more throttling
		if d := in.Decide("graph.users.list", "t", "a"); d.Status != 0 {
			t.Fatalf("after window %d: %+v", i, d)
		}
	}
	if got := in.EarlyRetries(); got["graph.users.get"] != 1 || len(got) != 1 {
		t.Fatalf("early retries %v", got)
	}
}

func TestSeededRateRepeats(t *testing.T) {
	seq := func() []int {
		in := NewInjector(9)
		in.Set(Config{Scope: Scope{Rule: Rule{ServerErrors: &ServerErrors{Rate: 0.3}}}})
		var out []int
		for range 50 {
			out = append(out, in.Decide("r", "t", "a").Status)
		}
		return out
	}
	a, b := seq(), seq()
	hits := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("differs at %d", i)
		}
		if a[i] == 503 {
			hits++
		}
	}
	if hits == 0 || hits == 50 {
		t.Fatalf("rate 0.3 fired %d/50", hits)
	}
}

func TestLagForAndJSON(t *testing.T) {
	var c Config
	raw := `{"objectLag":{"reads":2},"routes":{"graph.applications.addPassword":{"secretLag":{"for":"15s"}}},
	         "tenants":{"T":{"consentLag":{"for":30}}}}`
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	in := NewInjector(1)
	in.Set(c)
	if l := in.LagFor("object", "x", "graph.applications.create"); l.Reads != 2 {
		t.Errorf("object lag %+v", l)
	}
	if l := in.LagFor("secret", "x", "graph.applications.addPassword"); time.Duration(l.For) != 15*time.Second {
		t.Errorf("secret lag %+v", l)
	}
	if l := in.LagFor("consent", "T", "graph.appRoleAssignedTo.create"); time.Duration(l.For) != 30*time.Second {
		t.Errorf("consent lag %+v", l)
	}
	if l := in.LagFor("consent", "other", "graph.appRoleAssignedTo.create"); l.Active() {
		t.Errorf("consent lag leaked to another tenant: %+v", l)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("bad duration accepted")
	}
}

func TestBudgetLimitAndWindow(t *testing.T) {
	in := NewInjector(1)
	now := time.Unix(5000, 0)
	in.wallNow = func() time.Time { return now }
	in.Set(Config{Scope: Scope{Routes: map[string]Rule{"graph.applications.*": {
		Throttle: &Throttle{Limit: 5, Window: Duration(150 * time.Second)}}}}})
	var pcts []float64
	for range 5 {
		d := in.Decide("graph.applications.create", "t", "a")
		if d.Status != 0 {
			t.Fatalf("within budget: %+v", d)
		}
		pcts = append(pcts, d.LimitPercentage)
	}
	if pcts[2] != 0 || pcts[3] != 0.8 || pcts[4] != 1.0 {
		t.Fatalf("percentages %v", pcts)
	}
	// Another tenant, or another app, has its own budget.
	if d := in.Decide("graph.applications.create", "t2", "a"); d.Status != 0 || d.LimitPercentage != 0 {
		t.Fatalf("other tenant: %+v", d)
	}
	now = now.Add(50 * time.Second)
	d := in.Decide("graph.applications.update", "t", "a")
	if d.Status != 429 || d.RetryAfter != 100 {
		t.Fatalf("over budget: %+v", d)
	}
	now = now.Add(100 * time.Second) // the window ended
	if d := in.Decide("graph.applications.create", "t", "a"); d.Status != 0 {
		t.Fatalf("new window: %+v", d)
	}
}

func TestProfiles(t *testing.T) {
	for name := range Profiles {
		c, err := Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s does not round-trip: %v", name, err)
		}
	}
	if _, err := Profile("nope"); err == nil {
		t.Fatal("unknown profile accepted")
	}
}
