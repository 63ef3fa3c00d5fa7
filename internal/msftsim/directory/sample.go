package directory

import (
	"fmt"
	"time"
)

// seedSampleData fills a new tenant with users, alerts, incidents and
// sign-ins so the read probes and paging have something to return.
func (d *Directory) seedSampleData(t *Tenant, spec TenantSpec) {
	n := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	now := t.Created
	for i := range n(spec.Users, 3) {
		upn := fmt.Sprintf("user%d@%s", i+1, t.DefaultDomain)
		t.users = append(t.users, User{ID: d.NewID(), DisplayName: fmt.Sprintf("User %d", i+1), UserPrincipalName: upn, Mail: upn, AccountEnabled: true})
	}
	sev := []string{"low", "medium", "high", "informational"}
	for i := range n(spec.Alerts, 3) {
		ts := now.Add(-time.Duration(i+1) * time.Hour).Format(time.RFC3339Nano)
		t.alerts = append(t.alerts, map[string]any{
			"id": "da" + d.randString(36, "0123456789abcdef"), "providerAlertId": d.NewID(), "incidentId": fmt.Sprint(100 + i),
			"status": "new", "severity": sev[i%len(sev)], "classification": nil, "determination": nil,
			"serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "antivirus", "title": fmt.Sprintf("Sample alert %d", i+1),
			"description": "Simulated alert", "category": "Malware", "createdDateTime": ts, "lastUpdateDateTime": ts,
			"firstActivityDateTime": ts, "lastActivityDateTime": ts, "tenantId": t.ID, "evidence": []any{},
		})
	}
	for i := range n(spec.Incidents, 2) {
		ts := now.Add(-time.Duration(i+1) * time.Hour).Format(time.RFC3339Nano)
		t.incidents = append(t.incidents, map[string]any{
			"id": fmt.Sprint(100 + i), "tenantId": t.ID, "status": "active", "severity": sev[i%len(sev)],
			"displayName": fmt.Sprintf("Sample incident %d", i+1), "createdDateTime": ts, "lastUpdateDateTime": ts,
			"classification": "unknown", "determination": "unknown", "incidentWebUrl": "https://security.microsoft.com/incidents/" + fmt.Sprint(100+i),
			"tags": []any{}, "comments": []any{},
		})
	}
	for i := range n(spec.SignIns, 3) {
		u := t.users[i%len(t.users)]
		t.signIns = append(t.signIns, map[string]any{
			"id": d.NewID(), "createdDateTime": now.Add(-time.Duration(i+1) * time.Minute).Format(time.RFC3339Nano),
			"userDisplayName": u.DisplayName, "userPrincipalName": u.UserPrincipalName, "userId": u.ID,
			"appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064", "appDisplayName": "Graph Explorer", "ipAddress": "192.0.2.10",
			"clientAppUsed": "Browser", "isInteractive": true, "resourceDisplayName": "Microsoft Graph",
			"status": map[string]any{"errorCode": 0, "failureReason": "Other.", "additionalDetails": nil},
		})
	}
}

// Users returns the tenant's users, or false if the tenant does not exist.
func (d *Directory) Users(tenant string) ([]User, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return nil, false
	}
	return t.users, true // append-only, never mutated in place
}

// Collection returns sample data: "alerts", "incidents" or "signIns".
func (d *Directory) Collection(tenant, name string) []map[string]any {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t := d.tenantLocked(tenant)
	if t == nil {
		return nil
	}
	switch name {
	case "alerts":
		return t.alerts
	case "incidents":
		return t.incidents
	case "signIns":
		return t.signIns
	}
	return nil
}
