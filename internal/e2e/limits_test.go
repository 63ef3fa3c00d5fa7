package e2e

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestConnectionLimits: what one client may hold on a connection is
// bounded on both listeners (issue 11 item 12d): oversized headers are
// refused, the gRPC listener advertises its stream and header limits,
// and the connection keeps serving normal calls afterwards.
func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	ctx := context.Background()
	big := strings.Repeat("x", 100<<10)

	// REST: a 100 KiB header is refused before any handler runs.
	req, err := http.NewRequest("GET", s.HTTPURL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", big)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("REST with a 100 KiB header: %d, want 431", resp.StatusCode)
	}

	// gRPC: 100 KiB of metadata is refused; the same connection then
	// serves an ordinary call.
	org := s.NewOrg(t, "Limits")
	withBig := metadata.AppendToOutgoingContext(org.ViewerCtx, "x-padding", big)
	if _, err := s.Clients().Orgs.GetOrganization(withBig, &v1.GetOrganizationRequest{Name: org.Name}); err == nil {
		t.Fatal("gRPC call with 100 KiB of metadata accepted")
	}
	if _, err := s.Clients().Orgs.GetOrganization(org.ViewerCtx, &v1.GetOrganizationRequest{Name: org.Name}); err != nil {
		t.Fatalf("ordinary call after the refusal: %v", err)
	}

	// The gRPC listener's HTTP/2 SETTINGS carry the limits.
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", s.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	got := map[http2.SettingID]uint32{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		if err := sf.ForeachSetting(func(st http2.Setting) error { got[st.ID] = st.Val; return nil }); err != nil {
			t.Fatal(err)
		}
		break
	}
	if got[http2.SettingMaxConcurrentStreams] != 100 || got[http2.SettingMaxHeaderListSize] != 64<<10 {
		t.Fatalf("gRPC SETTINGS %v: want max concurrent streams 100 and max header list size 65536", got)
	}
}

// TestRepeatedFieldsBounded: a request near the 1 MiB limit made of bad
// list elements (or update_mask paths) gets one bounded InvalidArgument,
// not one violation per element, and writes nothing (issue 11 item 12b).
func TestRepeatedFieldsBounded(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	org := s.NewOrg(t, "Lists")
	tenant := newTenant(t, s, org.OperatorCtx, org.Name)
	features := make([]v1.Feature, 300_000) // 900 KiB on the wire: unknown values 999
	for i := range features {
		features[i] = 999
	}
	before := countRows(t, s, "integrations")
	_, err := s.Clients().Integrations.CreateIntegration(org.OperatorCtx, &v1.CreateIntegrationRequest{Parent: tenant.GetName(),
		Integration:  &v1.Integration{Kind: defenderKind, Features: features, Application: &v1.EntraApplication{ClientId: "00000000-0000-0000-0000-000000000001"}},
		ClientSecret: "x"})
	fields := violatedFields(t, err)
	if len(fields) == 0 || len(fields) > 20 || !slices.Contains(fields, "integration.features") {
		t.Fatalf("%d violations (%v...), want 1 to 20 naming integration.features", len(fields), fields[:min(len(fields), 3)])
	}
	if st, _ := status.FromError(err); len(st.Message()) > 2000 || proto.Size(st.Proto()) > 16<<10 {
		t.Fatalf("error of %d bytes (message %d)", proto.Size(st.Proto()), len(st.Message()))
	}
	if after := countRows(t, s, "integrations"); after != before {
		t.Fatalf("integrations %d -> %d after a refused create", before, after)
	}
	// update_mask with many long paths: refused whole, bounded.
	paths := make([]string, 200)
	for i := range paths {
		paths[i] = strings.Repeat("p", 4000)
	}
	_, err = s.Clients().Tenants.UpdateTenant(org.OperatorCtx, &v1.UpdateTenantRequest{Tenant: tenant, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || proto.Size(st.Proto()) > 16<<10 {
		t.Fatalf("update with 200 long mask paths: %v (%d bytes)", st.Code(), proto.Size(st.Proto()))
	}
}
