package msftsim_test

import "testing"

func TestSmokeGraphUsers(t *testing.T) {
	e := newEnv(t)
	c := e.app("User.Read.All")
	g := e.graph(e.credFor(c))
	users, err := g.Users().Get(t.Context(), nil)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	if n := len(users.GetValue()); n != 5 {
		t.Fatalf("got %d users", n)
	}
}
