package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// listServices asks a gRPC server's reflection for its services.
func listServices(t *testing.T, conn *grpc.ClientConn) ([]string, error) {
	t.Helper()
	stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		return nil, err
	}
	// A Send that finds the stream already ended returns io.EOF; the
	// server's status (e.g. Unimplemented) then comes from Recv.
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	_ = stream.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

// TestListenerSplit: the public listeners serve the API, /healthz,
// /readyz (terse) and /openapi.json; /metrics, pprof, gRPC reflection
// and readiness details are on the internal listener only.
func TestListenerSplit(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	if s.InternalURL == "" {
		t.Fatal("no internal listener")
	}

	// Public HTTP.
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
		if code, _ := getStatus(t, s.HTTPURL+path); code != http.StatusNotFound {
			t.Errorf("public %s: %d, want 404", path, code)
		}
	}
	if code, body := getStatus(t, s.HTTPURL+"/readyz"); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("public /readyz: %d %s", code, body)
	}
	if code, body := getStatus(t, s.HTTPURL+"/healthz"); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("public /healthz: %d %s", code, body)
	}
	// Public gRPC: health yes, reflection no.
	if hc, err := healthpb.NewHealthClient(s.Conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil ||
		hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("public gRPC health: %v %v", hc, err)
	}
	if names, err := listServices(t, s.Conn); status.Code(err) != codes.Unimplemented {
		t.Errorf("public gRPC reflection: %v %v, want Unimplemented", names, err)
	}

	// Internal HTTP.
	if code, body := getStatus(t, s.InternalURL+"/metrics"); code != 200 || !strings.Contains(body, "dzconnect_") {
		t.Errorf("internal /metrics: %d %.200s", code, body)
	}
	if code, body := getStatus(t, s.InternalURL+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("internal pprof index: %d %.200s", code, body)
	}
	if code, _ := getStatus(t, s.InternalURL+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("internal pprof goroutine: %d", code)
	}
	code, body := getStatus(t, s.InternalURL+"/readyz")
	var ready struct {
		Status       string
		Dependencies map[string]struct{ Status string }
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || ready.Status != "ok" ||
		ready.Dependencies["postgres"].Status != "ok" || ready.Dependencies["vault"].Status != "ok" {
		t.Errorf("internal /readyz: %d %s", code, body)
	}
	// The internal listener's API is not there: no /v1/ and no API RPCs.
	if code, _ := getStatus(t, s.InternalURL+"/v1/organizations"); code != http.StatusNotFound {
		t.Errorf("internal /v1/: %d, want 404", code)
	}

	// Internal gRPC (HTTP/2 without TLS, as grpcurl -plaintext): reflection
	// describes the public API; health answers.
	ic, err := grpc.NewClient(strings.TrimPrefix(s.InternalURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	names, err := listServices(t, ic)
	if err != nil {
		t.Fatalf("internal reflection: %v", err)
	}
	if !strings.Contains(strings.Join(names, " "), "dzconnect.v1.OrganizationService") {
		t.Errorf("internal reflection lists %v", names)
	}
	if hc, err := healthpb.NewHealthClient(ic).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil ||
		hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("internal gRPC health: %v %v", hc, err)
	}
}

// TestInternalListenerOff: --internal-addr off serves no internal
// listener.
func TestInternalListenerOff(t *testing.T) {
	t.Parallel()
	s := stack.Start(t, stack.Options{ExtraArgs: []string{"--internal-addr", "off"}})
	if s.InternalURL != "" {
		t.Fatalf("internal listener at %s", s.InternalURL)
	}
	if code, _ := getStatus(t, s.HTTPURL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics: %d", code)
	}
}
