package e2e

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestConsumerRole walks every RPC with a consumer key: in its own
// organization everything but IssueAccessToken and AcknowledgeCredential
// answers PermissionDenied (reads included) and writes nothing; against
// another organization everything is NotFound (or PermissionDenied where
// any key would get it), as for any key.
func TestConsumerRole(t *testing.T) {
	t.Parallel()
	s := stack.Start(t)
	a := s.NewOrg(t, "Org A")
	b := s.NewOrg(t, "Org B")
	tenant := newTenant(t, s, a.OperatorCtx, a.Name)
	integ := newIntegration(t, s, a.OperatorCtx, tenant.GetName(), "victim~Secret.Value_1234567890abcdefghi")
	keys, err := s.Clients().Keys.ListApiKeys(a.AdminCtx, &v1.ListApiKeysRequest{Parent: a.Name})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := v1.NewWebhookServiceClient(s.Conn).CreateWebhook(a.AdminCtx, &v1.CreateWebhookRequest{Parent: a.Name,
		Webhook: &v1.Webhook{Url: "https://victim.example.com/", Events: []v1.WebhookEvent{v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED}}})
	if err != nil {
		t.Fatal(err)
	}
	op := newOpHarness(t, s).start(t, a.Name)
	calls := callsAgainst(s, a, tenant.GetName(), integ.GetName(), keys.GetApiKeys()[0].GetName(), hook.GetWebhook().GetName(), op)
	ownConsumer := newConsumerKey(t, s, a.AdminCtx, a.Name)
	otherConsumer := newConsumerKey(t, s, b.AdminCtx, b.Name)

	before := snapshot(t, s)
	for _, c := range calls {
		token := strings.HasPrefix(c.method, "/dzconnect.v1.TokenService/")
		if !token {
			if got := wantCodeSoft(c.do(stack.Ctx(t, ownConsumer))); got != codes.PermissionDenied {
				t.Errorf("%s as A's consumer: %v, want PermissionDenied", c.method, got)
			}
		}
		want := codes.NotFound
		switch {
		case strings.HasPrefix(c.method, "/dzconnect.v1.OrganizationService/") && !strings.HasSuffix(c.method, "GetOrganization") &&
			!strings.HasSuffix(c.method, "SetOrganizationProvisioner"),
			strings.HasSuffix(c.method, "GetPermissionCatalog"):
			want = codes.PermissionDenied
		}
		if got := wantCodeSoft(c.do(stack.Ctx(t, otherConsumer))); got != want {
			t.Errorf("%s as B's consumer: %v, want %v", c.method, got, want)
		}
	}
	if after := snapshot(t, s); !equalCounts(before, after) {
		t.Fatalf("consumer calls wrote to the database:\nbefore %v\nafter  %v", before, after)
	}
	// The two methods it may call pass authorization in its own
	// organization (here they stop at validation or at the credential).
	tokens := v1.NewTokenServiceClient(s.Conn)
	_, err = tokens.IssueAccessToken(stack.Ctx(t, ownConsumer), &v1.IssueAccessTokenRequest{Integration: integ.GetName()})
	wantViolation(t, err, "api")
	_, err = tokens.AcknowledgeCredential(stack.Ctx(t, ownConsumer), &v1.AcknowledgeCredentialRequest{Integration: integ.GetName(),
		Consumer: "siem", Credential: integ.GetName() + "/credentials/" + uuid.NewString()})
	wantCode(t, err, codes.FailedPrecondition)
}
