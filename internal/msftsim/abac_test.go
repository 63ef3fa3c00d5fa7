package msftsim_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/simtest"
)

// TestARMRoleAssignmentConditions: Role Based Access Control Administrator
// with the "constrain roles and principal types" condition may assign and
// remove only the listed roles, and assign them only to service
// principals; a refusal says the ABAC condition was not fulfilled. The
// condition is stored and echoed.
func TestARMRoleAssignmentConditions(t *testing.T) {
	e := newEnv(t)
	p, _ := e.provisioner(nil, simtest.ProvisionerAzureRole(rgScope()))
	target := e.app()
	tok := e.mustToken(e.credFor(p), msftsim.ResourceARM)
	put := func(name, role, principalType string, body map[string]any) (int, map[string]any) {
		props := map[string]any{"roleDefinitionId": roleDef(role), "principalId": target.SPObjectID, "principalType": principalType}
		for k, v := range body {
			props[k] = v
		}
		st, _, got := e.do("PUT", e.ep.ARM+rgScope()+"/providers/Microsoft.Authorization/roleAssignments/"+name+apiVersion, tok, map[string]any{"properties": props})
		return st, got
	}
	del := func(name string) (int, map[string]any) {
		st, _, got := e.do("DELETE", e.ep.ARM+rgScope()+"/providers/Microsoft.Authorization/roleAssignments/"+name+apiVersion, tok, nil)
		return st, got
	}
	abac := func(st int, got map[string]any, action string) {
		t.Helper()
		m, _ := got["error"].(map[string]any)
		msg, _ := m["message"].(string)
		if st != 403 || errCode(got) != "AuthorizationFailed" || !strings.Contains(msg, "an ABAC condition not fulfilled") || !strings.Contains(msg, action) {
			t.Fatalf("want the ABAC refusal of %s: %d %v", action, st, got)
		}
	}
	reader := uuid.NewString()
	if st, got := put(reader, "8d289c81-5878-46d4-8554-54e1e3d8b5cb", "ServicePrincipal", nil); st != 201 {
		t.Fatalf("Sentinel Reader to a service principal: %d %v", st, got)
	}
	st, got := put(uuid.NewString(), "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "ServicePrincipal", nil) // Owner
	abac(st, got, "Microsoft.Authorization/roleAssignments/write")
	st, got = put(uuid.NewString(), "3e150937-b8fe-4cfb-8069-0eaf05ecd056", "User", nil)
	abac(st, got, "Microsoft.Authorization/roleAssignments/write")

	// Removing: the listed roles only (the resource's role decides).
	if err := e.admin.GrantAzureRole(e.tenant, msftsim.AzureRole{Scope: rgScope(), Role: "Owner"}, target.SPObjectID); err != nil {
		t.Fatal(err)
	}
	ras, _ := e.admin.RoleAssignments(e.tenant, rgScope(), target.SPObjectID)
	for _, ra := range ras {
		st, got := del(ra.Name)
		if strings.HasSuffix(ra.RoleDefinitionID, "8e3af657-a8ff-443c-a75c-2fe8c4bcb635") {
			abac(st, got, "Microsoft.Authorization/roleAssignments/delete")
		} else if st != 200 {
			t.Fatalf("delete %s: %d %v", ra.RoleDefinitionID, st, got)
		}
	}

	// The condition is stored and echoed (here on an assignment the
	// provisioner makes with one, as the customer's would be).
	cond := "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {8d289c81-5878-46d4-8554-54e1e3d8b5cb}))"
	st, got = put(uuid.NewString(), "73c42c96-874c-492b-b04d-ab87d138a893", "ServicePrincipal", map[string]any{"condition": cond, "conditionVersion": "2.0"})
	props, _ := got["properties"].(map[string]any)
	if st != 201 || props["condition"] != cond || props["conditionVersion"] != "2.0" {
		t.Fatalf("condition echo: %d %v", st, got)
	}
	if st, got = put(uuid.NewString(), "8d289c81-5878-46d4-8554-54e1e3d8b5cb", "ServicePrincipal", map[string]any{"condition": cond, "conditionVersion": "1.0"}); st != 400 {
		t.Fatalf("condition version 1.0: %d %v", st, got)
	}
}
