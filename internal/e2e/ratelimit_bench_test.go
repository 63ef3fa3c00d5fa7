package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// BenchmarkRateLimitIsolation is issue 11 item 4's load test: one
// organization flooding the API must not raise another's p99 by more
// than 20%. Organization B calls GetIntegration and ListIntegrations
// (alternately) at a steady rate (DZCONNECT_BENCH_B_RPS, default 40 per
// second, within its limits), open loop (each call starts on its tick,
// however long the previous took), for DZCONNECT_BENCH_PHASE (default
// 15s): first alone (the baseline), then while organization A floods
// GetIntegration from DZCONNECT_BENCH_FLOOD_WORKERS (default 32)
// goroutines, each calling again as soon as its call returns (or, with
// DZCONNECT_BENCH_FLOOD_RPS, at most that many calls per second in all),
// far beyond A's limits. The rate limits are the defaults (per caller 50/s, burst
// 100; per organization 100/s, burst 200). A and B call on their own
// connections, as two clients would. It reports B's p50 and p99 in both
// phases, the p99 ratio, and A's calls and refusals.
//
// DZCONNECT_BENCH_PROFILE names a file for a CPU profile of the flood
// phase (server and clients: one process).
//
// The flood's clients run in the benchmark's process, beside the server:
// on a small machine they take CPU the server would otherwise have, a
// cost a remote flood does not put on the server.
func BenchmarkRateLimitIsolation(b *testing.B) {
	phase := 15 * time.Second
	if d, err := time.ParseDuration(os.Getenv("DZCONNECT_BENCH_PHASE")); err == nil && d > 0 {
		phase = d
	}
	bRPS, floodWorkers, floodRPS := 40, 32, 0
	if v, err := strconv.Atoi(os.Getenv("DZCONNECT_BENCH_B_RPS")); err == nil && v > 0 {
		bRPS = v
	}
	if v, err := strconv.Atoi(os.Getenv("DZCONNECT_BENCH_FLOOD_RPS")); err == nil && v > 0 {
		floodRPS = v
	}
	if v, err := strconv.Atoi(os.Getenv("DZCONNECT_BENCH_FLOOD_WORKERS")); err == nil && v > 0 {
		floodWorkers = v
	}
	s := stack.Start(b, stack.Options{ExtraArgs: []string{"--log-level=warn",
		"--rate-limit-key-rps=50", "--rate-limit-key-burst=100", "--rate-limit-org-rps=100", "--rate-limit-org-burst=200"}})
	c := s.Clients()
	type org struct {
		stack.Org
		tenant, integration string
	}
	mk := func(name string) org {
		o := org{Org: s.NewOrg(b, name)}
		t, err := c.Tenants.CreateTenant(o.OperatorCtx, &v1.CreateTenantRequest{Parent: o.Name, Tenant: &v1.Tenant{
			EntraTenantId: uuid.NewString(), Cloud: v1.Cloud_CLOUD_GLOBAL, DisplayName: name + " customer"}})
		if err != nil {
			b.Fatal(err)
		}
		o.tenant = t.GetTenant().GetName()
		for i := range 5 {
			in, err := c.Integrations.CreateIntegration(o.OperatorCtx, &v1.CreateIntegrationRequest{Parent: o.tenant,
				Integration: &v1.Integration{Kind: defenderKind, DisplayName: fmt.Sprint("integration ", i),
					Application: &v1.EntraApplication{ClientId: uuid.NewString()}},
				ClientSecret: "abc8Q~bench-secret-not-used-0000000000000"})
			if err != nil {
				b.Fatal(err)
			}
			o.integration = in.GetIntegration().GetName()
		}
		return o
	}
	orgA, orgB := mk("Flooder"), mk("Bystander")

	// Each organization on its own connection.
	conn := func() v1.IntegrationServiceClient {
		cc, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		return v1.NewIntegrationServiceClient(cc)
	}
	aClient, bClient := conn(), conn()
	authed := func(key string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	}
	aCtx, bCtx := authed(orgA.Operator), authed(orgB.Viewer)

	// runB calls at bRPS for d and returns each call's latency.
	runB := func(d time.Duration) latencies {
		var (
			mu   sync.Mutex
			out  latencies
			wg   sync.WaitGroup
			errs atomic.Int64
		)
		tick := time.NewTicker(time.Second / time.Duration(bRPS))
		defer tick.Stop()
		end := time.Now().Add(d)
		for i := 0; time.Now().Before(end); i++ {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(bCtx, 30*time.Second)
				defer cancel()
				start := time.Now()
				var err error
				if i%2 == 0 {
					_, err = bClient.GetIntegration(ctx, &v1.GetIntegrationRequest{Name: orgB.integration})
				} else {
					_, err = bClient.ListIntegrations(ctx, &v1.ListIntegrationsRequest{Parent: orgB.tenant})
				}
				l := time.Since(start)
				if err != nil {
					errs.Add(1)
					return
				}
				mu.Lock()
				out = append(out, l)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if n := errs.Load(); n > 0 {
			b.Fatalf("organization B: %d calls failed (B stays within its limits)", n)
		}
		return out
	}

	b.ResetTimer()
	for range b.N {
		runB(2 * time.Second) // warm-up: connections, caches
		alone := runB(phase)

		ctx, stop := context.WithCancel(context.Background())
		var (
			wg                sync.WaitGroup
			aCalls, aRefused  atomic.Int64
			aOtherErr         atomic.Int64
			aFirstUnexpected  atomic.Value
			floodStart        = time.Now()
			floodEndObserved  time.Time
			floodRefusedShare float64
		)
		// Closed loop by default; at DZCONNECT_BENCH_FLOOD_RPS the workers
		// take turns from a ticker (a flood of that rate whose client side
		// costs the machine less).
		var turns chan struct{}
		if floodRPS > 0 {
			turns = make(chan struct{}, floodWorkers)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(turns)
				tick := time.NewTicker(time.Second / time.Duration(floodRPS))
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						select {
						case turns <- struct{}{}:
						default: // every worker busy: the flood is as fast as it gets
						}
					}
				}
			}()
		}
		for range floodWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if turns != nil {
						if _, ok := <-turns; !ok {
							return
						}
					}
					_, err := aClient.GetIntegration(aCtx, &v1.GetIntegrationRequest{Name: orgA.integration})
					aCalls.Add(1)
					switch status.Code(err) {
					case codes.OK:
					case codes.ResourceExhausted:
						aRefused.Add(1)
					default:
						aOtherErr.Add(1)
						aFirstUnexpected.CompareAndSwap(nil, err.Error())
					}
				}
			}()
		}
		stopProfile := func() {}
		if path := os.Getenv("DZCONNECT_BENCH_PROFILE"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
			stopProfile = func() { pprof.StopCPUProfile(); _ = f.Close() }
		}
		flooded := runB(phase)
		stop()
		wg.Wait()
		stopProfile()
		floodEndObserved = time.Now()
		if n := aOtherErr.Load(); n > 0 {
			b.Fatalf("organization A: %d calls failed otherwise than rate limited, first: %v", n, aFirstUnexpected.Load())
		}
		floodRefusedShare = float64(aRefused.Load()) / float64(aCalls.Load())

		floodMode := "closed loop"
		if floodRPS > 0 {
			floodMode = fmt.Sprintf("at most %d/s", floodRPS)
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		p99Alone, p99Flood := alone.pct(0.99), flooded.pct(0.99)
		b.ReportMetric(ms(alone.pct(0.5)), "B-alone-p50-ms")
		b.ReportMetric(ms(p99Alone), "B-alone-p99-ms")
		b.ReportMetric(ms(flooded.pct(0.5)), "B-flood-p50-ms")
		b.ReportMetric(ms(p99Flood), "B-flood-p99-ms")
		b.ReportMetric(float64(p99Flood)/float64(p99Alone), "p99-ratio")
		floodSecs := floodEndObserved.Sub(floodStart).Seconds()
		b.ReportMetric(float64(aCalls.Load())/floodSecs, "A-calls/s")
		b.ReportMetric(float64(aCalls.Load()-aRefused.Load())/floodSecs, "A-served/s")
		fmt.Printf("organization B, %d calls/s for %v (GetIntegration and ListIntegrations alternately):\n"+
			"  alone:             p50 %6.2f ms  p99 %6.2f ms  (%d calls)\n"+
			"  while A floods:    p50 %6.2f ms  p99 %6.2f ms  (%d calls)\n"+
			"  p99 ratio %.2f (target at most 1.20)\n"+
			"organization A, %d goroutines (%s): %d calls in %.1fs (%.0f/s), %d refused (%.1f%%), %.1f/s served\n",
			bRPS, phase, ms(alone.pct(0.5)), ms(p99Alone), len(alone), ms(flooded.pct(0.5)), ms(p99Flood), len(flooded),
			float64(p99Flood)/float64(p99Alone),
			floodWorkers, floodMode, aCalls.Load(), floodSecs, float64(aCalls.Load())/floodSecs, aRefused.Load(), 100*floodRefusedShare,
			float64(aCalls.Load()-aRefused.Load())/floodSecs)
	}
}
