// Package msftsim is a fault-injecting simulator of the Microsoft endpoints
// dzconnect uses: Entra ID (login), Microsoft Graph v1.0, Azure Resource
// Manager, Log Analytics and Defender for Endpoint, served over HTTPS from
// one listener with path prefixes, for many tenants at once. Tests start it
// in-process with Start; cmd/msftsim runs it standalone. See docs/msftsim.md.
package msftsim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/dropzoneai/dzconnect/internal/msftsim/azure"
	"github.com/dropzoneai/dzconnect/internal/msftsim/clock"
	"github.com/dropzoneai/dzconnect/internal/msftsim/directory"
	"github.com/dropzoneai/dzconnect/internal/msftsim/entra"
	"github.com/dropzoneai/dzconnect/internal/msftsim/faults"
	"github.com/dropzoneai/dzconnect/internal/msftsim/graph"
	"github.com/dropzoneai/dzconnect/internal/msftsim/observe"
	"github.com/dropzoneai/dzconnect/internal/msftsim/tlsca"
)

// Token audiences (resource IDs) of the simulated APIs; request tokens with
// scope Resource + "/.default".
const (
	ResourceGraph        = "https://graph.microsoft.com"
	ResourceARM          = "https://management.azure.com"
	ResourceLogAnalytics = "https://api.loganalytics.io"
	ResourceDefender     = "https://api.securitycenter.microsoft.com" // Defender for Endpoint's audience (its API is at api.security.microsoft.com)
	ResourceExchange     = "https://outlook.office365.com"
	ResourceCloudApps    = "05a65629-4c1b-48c1-a78b-804c4abdd4af"
)

// Options configure a simulator.
type Options struct {
	// Listen is the address to listen on; default 127.0.0.1:0.
	Listen string
	// PublicHost replaces the listen host in URLs (e.g. "localhost").
	PublicHost string
	// StateDir, when set, receives ca.pem, endpoints.json and seeded.json,
	// and keeps the CA key and token signing key so a restarted simulator
	// is trusted by the same CA and accepts tokens it issued before.
	// Directory state is not persisted: the seed is applied again (same seed,
	// same IDs and secrets).
	StateDir string
	// Seed makes generated IDs, secrets and random faults repeat.
	Seed uint64
	// SeedFile and SeedData load tenants, apps, consents and faults at start.
	SeedFile string
	SeedData *SeedFile
	// Now, when set, freezes the simulator clock at that instant (it then
	// moves only through Admin().AdvanceClock); otherwise the clock follows
	// wall time plus any advance.
	Now time.Time
	// Faults is the initial fault configuration.
	Faults faults.Config
	// SigningKeyBits sizes the token signing RSA key (default 2048).
	SigningKeyBits int
	// StrictTokenExpiry expires access tokens on the simulator clock alone.
	// By default a token is refused as expired only once its lifetime has
	// passed on both the simulator and the wall clock, because clients
	// (MSAL) refresh cached tokens by wall time: advancing the clock then
	// does not make APIs refuse tokens the client still holds. Turn it on
	// to test how a client handles 401 for an expired token.
	StrictTokenExpiry bool
	// TokenReuseWindow, when positive, returns the same token for identical
	// token requests within the window instead of signing anew (load tests;
	// Entra itself signs every token).
	TokenReuseWindow time.Duration
	// LogCapacity bounds the request log (default 10000).
	LogCapacity int
	// ExtraHosts are added to the serving certificate's SANs.
	ExtraHosts []string
	// Logger receives server errors; default discards.
	Logger *slog.Logger
	// LogRequests logs every simulated request to Logger at Info.
	LogRequests bool
}

// Endpoints are the URLs to configure clients with. All share one host.
type Endpoints struct {
	Base string `json:"base"`
	// Authority is azidentity's cloud.Configuration.ActiveDirectoryAuthorityHost.
	Authority string `json:"authority"`
	// Graph is the Graph base URL including /v1.0 (request adapter SetBaseUrl).
	Graph string `json:"graph"`
	// ARM is the Resource Manager endpoint; append /subscriptions/...
	ARM string `json:"arm"`
	// LogAnalytics is the Log Analytics API endpoint; append /v1/workspaces/{id}/query.
	LogAnalytics string `json:"logAnalytics"`
	// Defender is the Defender for Endpoint API endpoint (stands in for
	// https://api.security.microsoft.com); append /api/machines. Its token
	// audience is ResourceDefender, as Microsoft's.
	Defender string `json:"defender"`
	// Admin is the simulator's admin API.
	Admin string `json:"admin"`
	// Host is the host name clients must allow (kiota valid hosts).
	Host string `json:"host"`
	// CAFile is the CA bundle path when a StateDir was given.
	CAFile string `json:"caFile,omitempty"`
	// Audiences maps each API to the token resource to request.
	Audiences map[string]string `json:"audiences"`
}

// CloudConfiguration returns the azcore cloud configuration that points
// azidentity at the simulator's authority and ARM clients at its ARM endpoint.
func (e Endpoints) CloudConfiguration() cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: e.Authority,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: e.ARM, Audience: ResourceARM},
		},
	}
}

// Sim is a running simulator.
type Sim struct {
	opts     Options
	bundle   *tlsca.Bundle
	ln       net.Listener
	srv      *http.Server
	base     string
	caFile   string
	clock    *clock.Clock
	dir      *directory.Directory
	faults   *faults.Injector
	rec      *observe.Recorder
	signer   *entra.Signer
	admin    *Admin
	seeded   *Seeded
	done     chan error
	closed   chan struct{}
	closeOne sync.Once
	closeErr error
	endpoint Endpoints
}

// Start listens, loads the seed, and serves until ctx ends or Close.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var seedData *SeedFile
	if opts.SeedFile != "" {
		sf, err := LoadSeedFile(opts.SeedFile)
		if err != nil {
			return nil, err
		}
		seedData = sf
	}
	if opts.SeedData != nil {
		seedData = opts.SeedData
	}
	if seedData != nil && seedData.Seed != 0 && opts.Seed == 0 {
		opts.Seed = seedData.Seed
	}
	s := &Sim{opts: opts, done: make(chan error, 1), closed: make(chan struct{})}
	if !opts.Now.IsZero() {
		s.clock = clock.NewFrozen(opts.Now)
	} else {
		s.clock = clock.NewWall()
	}
	var err error
	hosts := append([]string{opts.PublicHost}, opts.ExtraHosts...)
	if opts.StateDir != "" {
		// Keep the CA and the token signing key across restarts.
		if s.bundle, err = tlsca.LoadOrNew(opts.StateDir, hosts...); err != nil {
			return nil, err
		}
		if s.signer, err = entra.LoadOrNewSigner(opts.StateDir, opts.SigningKeyBits); err != nil {
			return nil, err
		}
	} else {
		if s.bundle, err = tlsca.New(hosts...); err != nil {
			return nil, err
		}
		if s.signer, err = entra.NewSigner(opts.SigningKeyBits); err != nil {
			return nil, err
		}
	}
	s.dir = directory.New(s.clock, opts.Seed)
	s.faults = faults.NewInjector(opts.Seed)
	s.faults.Set(opts.Faults)
	s.rec = observe.NewRecorder(opts.LogCapacity)
	if opts.LogRequests {
		log := opts.Logger
		s.rec.OnEntry = func(e observe.Entry) {
			log.Info("request", "method", e.Method, "path", e.Path, "route", e.Route, "tenant", e.Tenant,
				"client", e.Client, "status", e.Status, "fault", e.Fault, "ms", e.DurationMS)
		}
	}
	s.admin = &Admin{sim: s}

	if s.ln, err = net.Listen("tcp", opts.Listen); err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Listen, err)
	}
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if opts.PublicHost != "" {
		host = opts.PublicHost
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.base = "https://" + net.JoinHostPort(host, port)
	s.endpoint = s.buildEndpoints(host)

	if seedData != nil {
		if s.seeded, err = s.admin.ApplySeed(*seedData); err != nil {
			_ = s.ln.Close()
			return nil, fmt.Errorf("applying seed: %w", err)
		}
	}
	if opts.StateDir != "" {
		if err := s.writeState(); err != nil {
			_ = s.ln.Close()
			return nil, err
		}
	}

	s.srv = &http.Server{
		Handler:           s.rec.Middleware(s.handler()),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.bundle.Server}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	go func() { s.done <- s.srv.ServeTLS(s.ln, "", "") }()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.closed:
		}
	}()
	return s, nil
}

func (s *Sim) buildEndpoints(host string) Endpoints {
	return Endpoints{
		Base: s.base, Authority: s.base + "/", Graph: s.base + "/v1.0", ARM: s.base + "/arm",
		LogAnalytics: s.base + "/loganalytics", Defender: s.base + "/defender", Admin: s.base + "/_sim", Host: host,
		Audiences: map[string]string{"graph": ResourceGraph, "arm": ResourceARM, "logAnalytics": ResourceLogAnalytics,
			"defender": ResourceDefender, "exchange": ResourceExchange, "cloudApps": ResourceCloudApps},
	}
}

func (s *Sim) writeState() error {
	p, err := s.bundle.WriteCA(s.opts.StateDir)
	if err != nil {
		return err
	}
	s.caFile, s.endpoint.CAFile = p, p
	b, _ := json.MarshalIndent(s.endpoint, "", "  ")
	if err := os.WriteFile(filepath.Join(s.opts.StateDir, "endpoints.json"), b, 0o644); err != nil {
		return fmt.Errorf("writing endpoints.json: %w", err)
	}
	if s.seeded != nil {
		b, _ := json.MarshalIndent(s.seeded, "", "  ")
		if err := os.WriteFile(filepath.Join(s.opts.StateDir, "seeded.json"), b, 0o600); err != nil {
			return fmt.Errorf("writing seeded.json: %w", err)
		}
	}
	return nil
}

func (s *Sim) handler() http.Handler {
	baseURL := func() string { return s.base }
	verifier := entra.NewVerifier(s.signer)
	verifier.Strict = s.opts.StrictTokenExpiry
	login := (&entra.Server{Dir: s.dir, Faults: s.faults, Signer: s.signer, BaseURL: baseURL, ReuseWindow: s.opts.TokenReuseWindow}).Handler()
	g := &graph.Server{Dir: s.dir, Faults: s.faults, Verifier: verifier, BaseURL: baseURL}
	az := &azure.Server{Dir: s.dir, Faults: s.faults, Verifier: verifier, BaseURL: baseURL}
	arm, la, def := az.ARM("/arm"), az.LogAnalytics("/loganalytics"), az.Defender("/defender")
	admin := s.admin.handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/_sim/"):
			admin.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/v1.0/"):
			g.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/arm/"):
			arm.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/loganalytics/"):
			la.ServeHTTP(w, r)
		case strings.HasPrefix(p, "/defender/"):
			def.ServeHTTP(w, r)
		default:
			login.ServeHTTP(w, r)
		}
	})
}

// Endpoints returns the URLs clients should use.
func (s *Sim) Endpoints() Endpoints { return s.endpoint }

// CAPool returns a pool trusting the simulator's CA.
func (s *Sim) CAPool() *x509.CertPool { return s.bundle.Pool }

// CAPEM returns the CA certificate in PEM.
func (s *Sim) CAPEM() []byte { return s.bundle.CAPEM }

// HTTPClient returns a client that trusts the simulator's CA.
func (s *Sim) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: s.bundle.Pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}, Timeout: 60 * time.Second}
}

// Admin returns the in-process admin API.
func (s *Sim) Admin() *Admin { return s.admin }

// Seeded returns what the seed created (client IDs and secrets), or nil.
func (s *Sim) Seeded() *Seeded { return s.seeded }

// Close stops the server; later calls return the first result.
func (s *Sim) Close() error {
	s.closeOne.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.closeErr = s.srv.Shutdown(ctx)
		if errors.Is(s.closeErr, http.ErrServerClosed) {
			s.closeErr = nil
		}
		close(s.closed)
	})
	return s.closeErr
}

// Wait blocks until the server stops and returns why.
func (s *Sim) Wait() error {
	err := <-s.done
	s.done <- err
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
