package metrics

import (
	"testing"
	"time"
)

func TestExpiryWindowsAndMinDaysLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { e := now.Add(d); return &e }
	counts := []ExpiryCount{
		{Management: "customer-managed", Window: "7d", N: 2, EarliestEnd: at(3 * 24 * time.Hour)},
		{Management: "customer-managed", Window: "30d", N: 5, EarliestEnd: at(10 * 24 * time.Hour)},
		{Management: "provisioned", Window: "later", N: 7, EarliestEnd: at(400 * 24 * time.Hour)},
		{Management: "provisioned", Window: "expired", N: 1, EarliestEnd: at(-36 * time.Hour)},
		{Management: "shared", Window: "unknown", N: 4},
	}
	got := map[[2]string]int{}
	for _, c := range expiryWindows(counts) {
		got[[2]string{c.Management, c.Window}] = c.N
	}
	if len(got) != len(windows)*len(modes) {
		t.Fatalf("%d series, want every window × mode (%d): %v", len(got), len(windows)*len(modes), got)
	}
	for k, want := range map[[2]string]int{{"customer-managed", "7d"}: 2, {"customer-managed", "30d"}: 5, {"customer-managed", "later"}: 0,
		{"provisioned", "expired"}: 1, {"shared", "unknown"}: 4} {
		if got[k] != want {
			t.Errorf("%v = %d, want %d", k, got[k], want)
		}
	}
	least := minDaysLeft(counts, now)
	if least["customer-managed"] != 3 || least["provisioned"] != -1.5 {
		t.Fatalf("minDaysLeft = %v", least)
	}
	if _, ok := least["shared"]; ok {
		t.Fatalf("no end known for shared, got %v", least)
	}
}
