package directory

import (
	"regexp"
	"strings"
)

// Azure ABAC conditions on role assignments, as far as delegating role
// assignment management needs them: Microsoft's "constrain roles" and
// "constrain roles and principal types" forms (docs/msftsim.md). A
// condition is a conjunction of blocks
//
//	( ( !(ActionMatches{'<action>'}) ) OR ( <clause> [AND <clause>]… ) )
//
// each clause one of
//
//	@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {g1, g2}
//	@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}
//	@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {…}
//
// A block whose action is being performed requires all its clauses; other
// blocks hold. Anything else in a condition (another attribute, operator or
// shape) makes it false: the simulator refuses what it cannot evaluate.

var (
	actionRe = regexp.MustCompile(`ActionMatches\{'([^']+)'\}`)
	clauseRe = regexp.MustCompile(`@(Request|Resource)\[Microsoft\.Authorization/roleAssignments:(RoleDefinitionId|PrincipalType)\]\s+(ForAnyOfAnyValues:GuidEquals|ForAnyOfAnyValues:StringEqualsIgnoreCase)\s*\{([^}]*)\}`)
)

// abacAttrs are the attributes a role assignment write or delete offers.
type abacAttrs struct {
	action string // Microsoft.Authorization/roleAssignments/write or …/delete
	// request: the assignment being written; resource: the one deleted.
	requestRole, requestPrincipalType, resourceRole, resourcePrincipalType string
}

// evalCondition reports whether condition holds for a.
func evalCondition(condition string, a abacAttrs) bool {
	if strings.TrimSpace(condition) == "" {
		return true
	}
	locs := actionRe.FindAllStringSubmatchIndex(condition, -1)
	if len(locs) == 0 {
		return false
	}
	for i, loc := range locs {
		end := len(condition)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		action := condition[loc[2]:loc[3]]
		if !strings.EqualFold(action, a.action) {
			continue
		}
		block := condition[loc[1]:end]
		clauses := clauseRe.FindAllStringSubmatch(block, -1)
		if len(clauses) == 0 {
			return false
		}
		for _, c := range clauses {
			var have string
			switch c[1] + ":" + c[2] {
			case "Request:RoleDefinitionId":
				have = a.requestRole
			case "Request:PrincipalType":
				have = a.requestPrincipalType
			case "Resource:RoleDefinitionId":
				have = a.resourceRole
			case "Resource:PrincipalType":
				have = a.resourcePrincipalType
			}
			if !anyValue(have, c[4]) {
				return false
			}
		}
	}
	return true
}

// anyValue reports whether have equals (ignoring case) one of the listed values.
func anyValue(have, list string) bool {
	for _, v := range strings.Split(list, ",") {
		v = strings.Trim(strings.TrimSpace(v), "'")
		if v != "" && strings.EqualFold(v, have) {
			return true
		}
	}
	return false
}

// mayManageAssignments reports whether caller may perform a.action at
// scope: an assignment of caller covering scope grants the permission and
// its condition (if any) holds. conditional says a granting assignment
// existed whose condition failed (for the error message).
func mayManageAssignments(t *Tenant, caller, scope, perm string, a abacAttrs) (ok, conditional bool) {
	for _, ra := range t.roleAssign {
		if !strings.EqualFold(ra.PrincipalID, caller) || !scopeCovers(ra.Scope, scope) || !roleGrants(roleGUID(ra.RoleDefinitionID), perm) {
			continue
		}
		if evalCondition(ra.Condition, a) {
			return true, false
		}
		conditional = true
	}
	return false, conditional
}

// abacFailed is ARM's refusal when a condition was not fulfilled.
func abacFailed(caller, action, scope string) *Error {
	return errf(403, "AuthorizationFailed",
		"The client '%s' with object id '%s' does not have authorization or an ABAC condition not fulfilled to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		caller, caller, action, scope)
}
