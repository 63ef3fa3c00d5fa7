package graph

import "testing"

func TestParseKey(t *testing.T) {
	name, key := parseKey("applications(appId='abc')")
	if name != "applications" || key["appId"] != "abc" {
		t.Fatalf("%s %v", name, key)
	}
	name, key = parseKey("applications(uniqueName='dz-1')")
	if name != "applications" || key["uniqueName"] != "dz-1" {
		t.Fatalf("%s %v", name, key)
	}
	if name, key = parseKey("users"); name != "users" || key != nil {
		t.Fatalf("%s %v", name, key)
	}
}

func TestParseFilter(t *testing.T) {
	cl, _, ok := parseFilter("appId eq 'a' and displayName eq 'O''Neil'", "appId", "displayName")
	if !ok || len(cl) != 2 || cl[0].value != "a" || cl[1].value != "O'Neil" {
		t.Fatalf("%v %v", cl, ok)
	}
	cl, _, ok = parseFilter("startswith(displayName, 'Box') and appId eq 'a'", "appId", "displayName")
	if !ok || len(cl) != 2 || cl[0].op != "startswith" || cl[0].prop != "displayName" || cl[0].value != "Box" {
		t.Fatalf("startswith: %v %v", cl, ok)
	}
	if !matches(cl[:1], func(string) string { return "box sync" }) || matches(cl[:1], func(string) string { return "Alpha" }) {
		t.Fatal("startswith matches case-insensitively by prefix")
	}
	if _, bad, ok := parseFilter("endswith(displayName,'a')", "displayName"); ok || bad == "" {
		t.Fatal("endswith (advanced only, not simulated) accepted")
	}
	if _, bad, ok := parseFilter("tags eq 'x'", "appId"); ok || bad != "tags" {
		t.Fatalf("unknown property: %q", bad)
	}
}
