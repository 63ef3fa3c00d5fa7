package cli_test

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/cli"
)

const fakeSigningSecret = "dzwhsec_fake_signing_secret_value"

// fakeWebhooks is an in-memory WebhookService recording its requests.
type fakeWebhooks struct {
	dzconnectv1.UnimplementedWebhookServiceServer
	mu   sync.Mutex
	reqs []proto.Message
}

func (f *fakeWebhooks) record(m proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(m))
}

func (f *fakeWebhooks) last() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return nil
	}
	return f.reqs[len(f.reqs)-1]
}

const fakeHook = "organizations/contoso/webhooks/w1"

func fakeWebhook() *dzconnectv1.Webhook {
	return &dzconnectv1.Webhook{Name: fakeHook, Url: "https://hooks.example.com/x",
		Events: []dzconnectv1.WebhookEvent{dzconnectv1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}, Etag: "1", CreateTime: fixedTime}
}

func (f *fakeWebhooks) CreateWebhook(_ context.Context, req *dzconnectv1.CreateWebhookRequest) (*dzconnectv1.CreateWebhookResponse, error) {
	f.record(req)
	w := proto.Clone(req.GetWebhook()).(*dzconnectv1.Webhook)
	w.Name = req.GetParent() + "/webhooks/w1"
	return &dzconnectv1.CreateWebhookResponse{Webhook: w, SigningSecret: fakeSigningSecret}, nil
}

func (f *fakeWebhooks) GetWebhook(_ context.Context, req *dzconnectv1.GetWebhookRequest) (*dzconnectv1.GetWebhookResponse, error) {
	f.record(req)
	return &dzconnectv1.GetWebhookResponse{Webhook: fakeWebhook()}, nil
}

func (f *fakeWebhooks) ListWebhooks(_ context.Context, req *dzconnectv1.ListWebhooksRequest) (*dzconnectv1.ListWebhooksResponse, error) {
	f.record(req)
	return &dzconnectv1.ListWebhooksResponse{Webhooks: []*dzconnectv1.Webhook{fakeWebhook()}}, nil
}

func (f *fakeWebhooks) UpdateWebhook(_ context.Context, req *dzconnectv1.UpdateWebhookRequest) (*dzconnectv1.UpdateWebhookResponse, error) {
	f.record(req)
	return &dzconnectv1.UpdateWebhookResponse{Webhook: req.GetWebhook()}, nil
}

func (f *fakeWebhooks) DeleteWebhook(_ context.Context, req *dzconnectv1.DeleteWebhookRequest) (*dzconnectv1.DeleteWebhookResponse, error) {
	f.record(req)
	return &dzconnectv1.DeleteWebhookResponse{}, nil
}

func (f *fakeWebhooks) ListWebhookDeliveries(_ context.Context, req *dzconnectv1.ListWebhookDeliveriesRequest) (*dzconnectv1.ListWebhookDeliveriesResponse, error) {
	f.record(req)
	if req.GetPageToken() == "" {
		return &dzconnectv1.ListWebhookDeliveriesResponse{NextPageToken: "p2", Deliveries: []*dzconnectv1.WebhookDelivery{{
			Name: fakeHook + "/deliveries/7", Event: dzconnectv1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED,
			Status: "pending", Attempts: 2, LastStatusCode: 503, LastError: "receiver answered 503 Service Unavailable", CreateTime: fixedTime,
			Resource: "organizations/contoso/tenants/t/integrations/i",
		}}}, nil
	}
	return &dzconnectv1.ListWebhookDeliveriesResponse{Deliveries: []*dzconnectv1.WebhookDelivery{{
		Name: fakeHook + "/deliveries/3", Status: "delivered", Attempts: 1, LastStatusCode: 204, CreateTime: fixedTime,
	}}}, nil
}

// runWebhookCLI runs dzctl against a fakeWebhooks over bufconn.
func runWebhookCLI(t *testing.T, f *fakeWebhooks, args ...string) result {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	dzconnectv1.RegisterWebhookServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()
	var stdout, stderr bytes.Buffer
	env := map[string]string{cli.EnvAddr: "passthrough:///bufnet", cli.EnvAPIKey: testAPIKey}
	app := cli.New(strings.NewReader(""), &stdout, &stderr,
		cli.WithGetenv(func(k string) string { return env[k] }),
		cli.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })),
	)
	r := result{code: app.Execute(t.Context(), args), stdout: stdout.String(), stderr: stderr.String()}
	if !slices.Contains(args, "create") && strings.Contains(r.stdout+r.stderr, fakeSigningSecret) {
		t.Errorf("dzctl %v printed a signing secret", args)
	}
	return r
}

func TestWebhookCommands(t *testing.T) {
	f := &fakeWebhooks{}
	ok := func(args ...string) result {
		t.Helper()
		r := runWebhookCLI(t, f, args...)
		if r.code != cli.ExitOK {
			t.Fatalf("dzctl %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}
	usage := func(args ...string) {
		t.Helper()
		if r := runWebhookCLI(t, f, args...); r.code != cli.ExitUsage {
			t.Fatalf("dzctl %v: exit %d, want usage error\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}

	r := ok("webhook", "create", "--org", "contoso", "--url", "https://hooks.example.com/x", "--event", "state-changed")
	create := f.last().(*dzconnectv1.CreateWebhookRequest)
	if create.GetParent() != "organizations/contoso" || create.GetRequestId() == "" ||
		!slices.Equal(create.GetWebhook().GetEvents(), []dzconnectv1.WebhookEvent{dzconnectv1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}) {
		t.Fatalf("create request %v", create)
	}
	if !strings.Contains(r.stdout, "Signing secret:") || !strings.Contains(r.stdout, fakeSigningSecret) || !strings.Contains(r.stderr, "not shown again") {
		t.Fatalf("create output:\n%s\n%s", r.stdout, r.stderr)
	}
	ok("webhook", "create", "--org", "organizations/contoso", "--url", "https://hooks.example.com/x", "--disabled")
	if w := f.last().(*dzconnectv1.CreateWebhookRequest).GetWebhook(); len(w.GetEvents()) != 2 || !w.GetDisabled() {
		t.Fatalf("default events / disabled: %v", w)
	}
	if r := ok("webhook", "create", "--org", "contoso", "--url", "https://x.example.com", "-o", "json"); !strings.Contains(r.stdout, `"signingSecret"`) {
		t.Fatalf("json create: %s", r.stdout)
	}
	usage("webhook", "create", "--org", "contoso", "--url", "https://x.example.com", "--event", "deleted")
	usage("webhook", "create", "--org", "contoso")

	if r := ok("webhook", "get", fakeHook); !strings.Contains(r.stdout, "state-changed") {
		t.Fatalf("get: %s", r.stdout)
	}
	usage("webhook", "get", "organizations/contoso/tenants/t")
	if r := ok("webhook", "list", "--org", "contoso"); !strings.Contains(r.stdout, "https://hooks.example.com/x") {
		t.Fatalf("list: %s", r.stdout)
	}

	ok("webhook", "update", fakeHook, "--disabled=false", "--etag", "1")
	upd := f.last().(*dzconnectv1.UpdateWebhookRequest)
	if !slices.Equal(upd.GetUpdateMask().GetPaths(), []string{"disabled"}) || upd.GetWebhook().GetDisabled() || upd.GetWebhook().GetEtag() != "1" {
		t.Fatalf("update request %v", upd)
	}
	ok("webhook", "update", fakeHook, "--url", "https://new.example.com/", "--event", "credential-expiring,state-changed")
	if upd := f.last().(*dzconnectv1.UpdateWebhookRequest); !slices.Equal(upd.GetUpdateMask().GetPaths(), []string{"url", "events"}) || len(upd.GetWebhook().GetEvents()) != 2 {
		t.Fatalf("update request %v", upd)
	}
	usage("webhook", "update", fakeHook)

	r = ok("webhook", "deliveries", fakeHook)
	for _, want := range []string{"503", "pending", "delivered", "7", "receiver answered 503"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("deliveries output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := ok("webhook", "delete", fakeHook); !strings.Contains(r.stdout, "Deleted "+fakeHook) {
		t.Fatalf("delete: %s", r.stdout)
	}
}
