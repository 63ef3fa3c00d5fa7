package main

import (
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

// The example seed documented in docs/msftsim.md must keep loading.
func TestExampleSeedLoads(t *testing.T) {
	sf, err := msftsim.LoadSeedFile("seed.example.json")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := msftsim.Start(t.Context(), msftsim.Options{SeedData: sf, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if s := sim.Seeded(); len(s.Apps) != 1 || len(s.Provisioners) != 1 || len(s.Tenants) != 4 {
		t.Fatalf("seeded %+v", s)
	}
}
