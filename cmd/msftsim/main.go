// Command msftsim runs the Microsoft endpoint simulator standalone. See
// docs/msftsim.md for flags, the seed file and curl examples.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dropzoneai/dzconnect/internal/msftsim"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "msftsim:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve HTTPS on")
	stateDir := flag.String("state-dir", ".run/msftsim", "where to write ca.pem, endpoints.json and seeded.json")
	seedFile := flag.String("seed", "", "JSON seed file with tenants, apps, consents, workspaces and faults")
	rngSeed := flag.Uint64("rng-seed", 1, "seed for generated IDs, secrets and random faults (default: the seed file's \"seed\", else 1)")
	publicHost := flag.String("public-host", "", "host name to put in URLs instead of the listen host (e.g. localhost)")
	faultsFile := flag.String("faults", "", "JSON fault configuration to start with")
	logRequests := flag.Bool("log-requests", false, "log every simulated request (route, tenant, client, status, fault)")
	strict := flag.Bool("strict-token-expiry", false, "expire access tokens on the simulator clock alone")
	profile := flag.String("fault-profile", "", "named fault configuration to start with: none, flaky, replication, graph-limits")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts := msftsim.Options{Listen: *listen, StateDir: *stateDir, SeedFile: *seedFile, PublicHost: *publicHost, Logger: log,
		StrictTokenExpiry: *strict, LogRequests: *logRequests}
	seedSet := false
	flag.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "rng-seed" })
	if seedSet || *seedFile == "" {
		opts.Seed = *rngSeed // otherwise the seed file's "seed" applies
	}
	if *profile != "" {
		c, err := faults.Profile(*profile)
		if err != nil {
			return err
		}
		opts.Faults = c
	}
	if *faultsFile != "" {
		b, err := os.ReadFile(*faultsFile)
		if err != nil {
			return err
		}
		var c faults.Config
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("parsing %s: %w", *faultsFile, err)
		}
		opts.Faults = c
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sim, err := msftsim.Start(ctx, opts)
	if err != nil {
		return err
	}
	ep := sim.Endpoints()
	log.Info("msftsim serving", "base", ep.Base, "authority", ep.Authority, "graph", ep.Graph, "arm", ep.ARM,
		"logAnalytics", ep.LogAnalytics, "admin", ep.Admin, "caFile", ep.CAFile)
	return sim.Wait()
}
