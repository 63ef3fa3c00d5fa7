package msftsim_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
)

var (
	simsMu sync.Mutex
	sims   []*msftsim.Sim
)

// track records a simulator so TestMain can check route coverage.
func track(s *msftsim.Sim) *msftsim.Sim {
	simsMu.Lock()
	defer simsMu.Unlock()
	sims = append(sims, s)
	return s
}

// TestMain fails a full run (no -run filter) that leaves a simulated
// route unexercised, or that hits a route missing from msftsim.Routes.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code != 0 || flag.Lookup("test.run").Value.String() != "" {
		os.Exit(code)
	}
	seen := map[string]bool{}
	for _, s := range sims {
		for _, c := range s.Admin().Counters() {
			if c.Statuses[200]+c.Statuses[201]+c.Statuses[204]+c.Statuses[302] > 0 {
				seen[c.Route] = true
			}
			if !strings.HasSuffix(c.Route, ".unknown") && !slices.Contains(msftsim.Routes, c.Route) {
				fmt.Fprintf(os.Stderr, "route %q is served but missing from msftsim.Routes\n", c.Route)
				code = 1
			}
		}
	}
	for _, r := range msftsim.Routes {
		if !seen[r] {
			fmt.Fprintf(os.Stderr, "route %q is never exercised successfully by a test\n", r)
			code = 1
		}
	}
	os.Exit(code)
}
