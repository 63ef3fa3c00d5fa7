package directory

import (
	"fmt"
	"strings"
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
	// Shapes follow Microsoft's documented examples (docs/msftsim.md,
	// [G-alert-get], [G-incident-get], [G-signin-get]); every property is
	// one msgraph-sdk-go's models read (msftsim's decode test checks it).
	sev := []string{"low", "medium", "high", "informational"}
	for i := range n(spec.Alerts, 3) {
		created := now.Add(-time.Duration(i+1) * time.Hour)
		ts := created.UTC().Format(time.RFC3339Nano)
		id := "da" + d.randString(18, "0123456789") + "_" + d.randString(9, "0123456789")
		incident := fmt.Sprint(100 + i)
		u := t.users[i%len(t.users)]
		t.alerts = append(t.alerts, map[string]any{
			"@odata.type": "#microsoft.graph.security.alert",
			"id":          id, "providerAlertId": id, "incidentId": incident,
			"status": "new", "severity": sev[i%len(sev)], "classification": "unknown", "determination": "unknown",
			"serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "antivirus", "productName": "Microsoft Defender for Endpoint",
			"detectorId": d.NewID(), "tenantId": t.ID, "title": fmt.Sprintf("Sample alert %d", i+1),
			"description": "Simulated alert: a hidden file was launched.", "recommendedActions": "Collect artifacts and determine scope.",
			"category": "DefenseEvasion", "assignedTo": nil, "actorDisplayName": nil, "threatDisplayName": nil, "threatFamilyName": nil,
			"alertPolicyId":   nil,
			"alertWebUrl":     "https://security.microsoft.com/alerts/" + id + "?tid=" + t.ID,
			"incidentWebUrl":  "https://security.microsoft.com/incidents/" + incident + "?tid=" + t.ID,
			"mitreTechniques": []any{"T1564.001"}, "createdDateTime": ts, "lastUpdateDateTime": ts, "resolvedDateTime": nil,
			"firstActivityDateTime": ts, "lastActivityDateTime": ts, "comments": []any{}, "systemTags": []any{},
			"evidence": d.sampleEvidence(t, u, ts, i),
		})
	}
	for i := range n(spec.Incidents, 2) {
		ts := now.Add(-time.Duration(i+1) * time.Hour).UTC().Format(time.RFC3339Nano)
		id := fmt.Sprint(100 + i)
		t.incidents = append(t.incidents, map[string]any{
			"id": id, "tenantId": t.ID, "status": "active", "severity": sev[i%len(sev)],
			"displayName": fmt.Sprintf("Sample incident %d", i+1), "description": "Simulated incident", "summary": nil,
			"createdDateTime": ts, "lastUpdateDateTime": ts, "assignedTo": nil, "lastModifiedBy": nil,
			"classification": "unknown", "determination": "unknown", "redirectIncidentId": nil, "resolvingComment": nil,
			"incidentWebUrl": "https://security.microsoft.com/incidents/" + id + "?tid=" + t.ID,
			// v1.0 names the tags customTags (tags is beta) [G-incident].
			"customTags": []any{}, "systemTags": []any{}, "comments": []any{},
		})
	}
	for i := range n(spec.SignIns, 3) {
		u := t.users[i%len(t.users)]
		t.signIns = append(t.signIns, map[string]any{
			"id": d.NewID(), "createdDateTime": now.Add(-time.Duration(i+1) * time.Minute).UTC().Format(time.RFC3339Nano),
			"userDisplayName": u.DisplayName, "userPrincipalName": u.UserPrincipalName, "userId": u.ID,
			"appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064", "appDisplayName": "Graph Explorer", "ipAddress": "192.0.2.10",
			"clientAppUsed": "Browser", "correlationId": d.NewID(), "conditionalAccessStatus": "notApplied", "isInteractive": true,
			"riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none", "riskState": "none",
			"riskEventTypes": []any{}, "riskEventTypes_v2": []any{}, "resourceDisplayName": "Microsoft Graph", "resourceId": "00000003-0000-0000-c000-000000000000",
			"status": map[string]any{"errorCode": 0, "failureReason": nil, "additionalDetails": nil},
			"deviceDetail": map[string]any{"deviceId": "", "displayName": nil, "operatingSystem": "Windows 10", "browser": "Edge 120.0.0",
				"isCompliant": nil, "isManaged": nil, "trustType": nil},
			"location": map[string]any{"city": "Redmond", "state": "Washington", "countryOrRegion": "US",
				"geoCoordinates": map[string]any{"altitude": nil, "latitude": 47.6805, "longitude": -122.1209}},
			"appliedConditionalAccessPolicies": []any{},
		})
	}
}

// sampleEvidence is an alert's evidence: one of each kind dzconnect's
// readers meet, each with its @odata.type, as alert resource type documents
// (polymorphic alertEvidence) [G-alert] [G-alert-get].
func (d *Directory) sampleEvidence(t *Tenant, u User, ts string, i int) []any {
	base := func(typ string, roles ...string) map[string]any {
		if roles == nil {
			roles = []string{}
		}
		return map[string]any{"@odata.type": "#microsoft.graph.security." + typ, "createdDateTime": ts, "verdict": "suspicious",
			"remediationStatus": "none", "remediationStatusDetails": nil, "roles": roles, "detailedRoles": []any{}, "tags": []any{}}
	}
	account := map[string]any{"accountName": strings.Split(u.UserPrincipalName, "@")[0], "domainName": strings.ToUpper(strings.Split(t.DefaultDomain, ".")[0]),
		"userSid": fmt.Sprintf("S-1-5-21-1004336348-1177238915-682003330-%d", 1000+i), "azureAdUserId": u.ID,
		"userPrincipalName": u.UserPrincipalName, "displayName": u.DisplayName}
	mde := d.randString(40, "0123456789abcdef")
	file := map[string]any{"sha1": d.randString(40, "0123456789abcdef"), "sha256": d.randString(64, "0123456789abcdef"),
		"fileName": "payload.exe", "filePath": `C:\Users\Public`, "fileSize": 6136392, "filePublisher": nil, "signer": nil, "issuer": nil}
	user := base("userEvidence", "compromised")
	user["userAccount"] = account
	device := base("deviceEvidence")
	for k, v := range map[string]any{"firstSeenDateTime": ts, "mdeDeviceId": mde, "azureAdDeviceId": nil,
		"deviceDnsName": fmt.Sprintf("ws%02d.%s", i+1, t.DefaultDomain), "osPlatform": "Windows11", "osBuild": 22631,
		"version": "23H2", "healthStatus": "active", "riskScore": "medium", "rbacGroupId": 0, "rbacGroupName": nil,
		"onboardingStatus": "onboarded", "defenderAvStatus": "updated", "ipInterfaces": []any{"192.0.2.10"},
		"loggedOnUsers": []any{map[string]any{"accountName": account["accountName"], "domainName": account["domainName"]}}, "vmMetadata": nil} {
		device[k] = v
	}
	ip := base("ipEvidence")
	ip["ipAddress"], ip["countryLetterCode"] = "192.0.2.10", "US"
	fe := base("fileEvidence")
	fe["detectionStatus"], fe["mdeDeviceId"], fe["fileDetails"] = "detected", mde, file
	proc := base("processEvidence")
	for k, v := range map[string]any{"processId": 4780 + i, "parentProcessId": 668, "processCommandLine": `"payload.exe" --hidden`,
		"processCreationDateTime": ts, "parentProcessCreationDateTime": ts, "detectionStatus": "detected", "mdeDeviceId": mde,
		"imageFile": file, "parentProcessImageFile": map[string]any{"sha1": nil, "sha256": nil, "fileName": "explorer.exe",
			"filePath": `C:\Windows`, "fileSize": 731744, "filePublisher": "Microsoft Corporation", "signer": nil, "issuer": nil},
		"userAccount": account} {
		proc[k] = v
	}
	return []any{device, user, ip, fe, proc}
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
