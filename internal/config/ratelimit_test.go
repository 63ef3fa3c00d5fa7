package config

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimitFlags(t *testing.T) {
	env := map[string]string{"DZCONNECT_DATABASE_URL": "postgres://db/x", "DZCONNECT_VAULT_ADDR": "https://v:8200", "DZCONNECT_VAULT_TOKEN": "t"}
	c, err := load(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimitOrgRPS != 100 || c.RateLimitOrgBurst != 200 || c.RateLimitKeyRPS != 50 || c.RateLimitKeyBurst != 100 ||
		c.RateLimitOrgOverrides != nil || c.OnDemandCheckConcurrency != 20 || c.OnDemandCheckPerOrg != 5 ||
		c.RateLimitHold != time.Second || c.RateLimitMaxHeld != 1000 {
		t.Fatalf("defaults: %+v", c)
	}
	org1, org2 := "0b9c6f0e-1111-4222-8333-444455556666", "0B9C6F0E-AAAA-4BBB-8CCC-DDDDEEEEFFFF"
	c, err = load([]string{"--rate-limit-key-rps=0.5", "--rate-limit-org-overrides", org1 + "=500:1000, " + org2 + "=0"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimitKeyRPS != 0.5 || len(c.RateLimitOrgOverrides) != 2 ||
		c.RateLimitOrgOverrides[org1] != (RateOverride{RPS: 500, Burst: 1000}) ||
		c.RateLimitOrgOverrides[strings.ToLower(org2)] != (RateOverride{}) {
		t.Fatalf("overrides: %+v", c.RateLimitOrgOverrides)
	}
	for _, bad := range [][]string{
		{"--rate-limit-key-rps=-1"},
		{"--rate-limit-org-rps=fast"},
		{"--rate-limit-org-overrides", "acme=5"},
		{"--rate-limit-org-overrides", org1 + "=5:0"},
		{"--rate-limit-org-overrides", org1 + "=5," + org1 + "=6"},
		{"--on-demand-check-concurrency=-1"},
		{"--rate-limit-hold=11s"},
		{"--rate-limit-hold=-1s"},
		{"--rate-limit-max-held=0"},
	} {
		if _, err := load(bad, env); err == nil || !strings.Contains(err.Error(), strings.SplitN(strings.TrimPrefix(bad[0], "--"), "=", 2)[0]) {
			t.Errorf("%v: %v, want an error naming the flag", bad, err)
		}
	}
}
