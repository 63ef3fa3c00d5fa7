package azure

import (
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
)

func TestActionMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, action string
		want            bool
	}{
		{"*/read", "Microsoft.SecurityInsights/incidents/read", true},
		{"*", "Microsoft.Authorization/roleAssignments/write", true},
		{"Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/incidents/read", true},
		{"microsoft.securityinsights/*/read", "Microsoft.SecurityInsights/Incidents/Read", true},
		{"Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/incidents/write", false},
		{"Microsoft.OperationalInsights/workspaces/*/read", "Microsoft.OperationalInsights/workspaces/query/read", true},
		{"Microsoft.OperationalInsights/workspaces/*/read", "Microsoft.OperationalInsights/workspaces/read", false},
		{"Microsoft.SecurityInsights/incidents/*", "Microsoft.SecurityInsights/incidents/read", true},
		{"Microsoft.Authorization/*/read", "Microsoft.Authorization/roleAssignments/read", true},
		{"Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/read", true},
	} {
		if got := actionMatches(tc.pattern, tc.action); got != tc.want {
			t.Errorf("actionMatches(%q, %q) = %v", tc.pattern, tc.action, got)
		}
	}
}

func TestRoleAllowsIncidentsRead(t *testing.T) {
	const read = "Microsoft.SecurityInsights/incidents/read"
	for role, want := range map[string]bool{
		directory.RoleSentinelReader: true, directory.RoleSentinelResponder: true, directory.RoleSentinelContributor: true,
		directory.RoleReader: true, directory.RoleLogAnalyticsReader: true, directory.RoleOwner: true,
		directory.RoleUserAccessAdministrator: true, "00000000-0000-4000-8000-000000000000": false,
	} {
		if got := roleAllows(role, read); got != want {
			t.Errorf("%s: %v", directory.AzureRoleNames[role], got)
		}
	}
	if roleAllows(directory.RoleSentinelResponder, "Microsoft.SecurityInsights/incidents/comments/Delete") ||
		!roleAllows(directory.RoleSentinelResponder, "Microsoft.SecurityInsights/incidents/write") {
		t.Error("Responder's notActions")
	}
	if roleAllows(directory.RoleSentinelReader, "Microsoft.SecurityInsights/incidents/write") {
		t.Error("Sentinel Reader writes incidents")
	}
}

func TestParseAssignmentFilter(t *testing.T) {
	for _, tc := range []struct {
		f         string
		principal string
		atScope   bool
		ok        bool
	}{
		{"", "", false, true},
		{"atScope()", "", true, true},
		{"principalId eq 'p1'", "p1", false, true},
		{"assignedTo('p1')", "p1", false, true},
		{"atScope() and assignedTo('p1')", "p1", true, true},
		{"atScope() and principalId eq 'p1'", "", false, false},
		{"roleName eq 'x'", "", false, false},
		{"atScope() or assignedTo('p1')", "", false, false},
	} {
		p, at, ok := parseAssignmentFilter(tc.f)
		if p != tc.principal || at != tc.atScope || ok != tc.ok {
			t.Errorf("%q: %q %v %v", tc.f, p, at, ok)
		}
	}
}
