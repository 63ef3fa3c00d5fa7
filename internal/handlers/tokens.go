package handlers

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/token"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

type tokens struct {
	v1.UnimplementedTokenServiceServer
	d Deps
}

var tokenAPIs = map[v1.MicrosoftApi]token.API{
	v1.MicrosoftApi_MICROSOFT_API_GRAPH:         verify.APIGraph,
	v1.MicrosoftApi_MICROSOFT_API_DEFENDER:      verify.APIDefender,
	v1.MicrosoftApi_MICROSOFT_API_LOG_ANALYTICS: verify.APILogAnalytics,
	v1.MicrosoftApi_MICROSOFT_API_ARM:           verify.APIARM,
	v1.MicrosoftApi_MICROSOFT_API_EXCHANGE:      verify.APIExchange,
	v1.MicrosoftApi_MICROSOFT_API_CLOUD_APPS:    verify.APICloudApps,
}

var tokenAPIToProto = reverse(tokenAPIs)

// IssueAccessToken validates the request and issues (or returns the cached)
// token. The token is in the response only: never logged.
func (h *tokens) IssueAccessToken(ctx context.Context, req *v1.IssueAccessTokenRequest) (*v1.IssueAccessTokenResponse, error) {
	var v apperr.Violations
	name, err := resource.ParseIntegration("integration", req.GetIntegration())
	if err != nil {
		return nil, err
	}
	api, ok := tokenAPIs[req.GetApi()]
	v.Check(ok, "api", "must be one of MICROSOFT_API_GRAPH, _DEFENDER, _LOG_ANALYTICS, _ARM, _EXCHANGE, _CLOUD_APPS")
	if err := v.Err(); err != nil {
		return nil, err
	}
	got, err := h.d.Tokens.Issue(ctx, name.Org, name.Integration, api)
	if err != nil {
		return nil, err
	}
	out := &v1.IssueAccessTokenResponse{AccessToken: got.Value, ExpireTime: timestamppb.New(got.ExpiresOn), Api: tokenAPIToProto[got.API], Scope: got.Scope}
	if got.Credential != uuid.Nil {
		out.Credential = name.String() + "/credentials/" + got.Credential.String()
	}
	return out, nil
}

// AcknowledgeCredential validates the request and records the consumer's
// credential.
func (h *tokens) AcknowledgeCredential(ctx context.Context, req *v1.AcknowledgeCredentialRequest) (*v1.AcknowledgeCredentialResponse, error) {
	var v apperr.Violations
	name, err := resource.ParseIntegration("integration", req.GetIntegration())
	if err != nil {
		return nil, err
	}
	v.Check(token.ValidConsumer(req.GetConsumer()), "consumer", "1 to 63 lowercase letters, digits and '-', starting with a letter")
	var cred uuid.UUID
	rest, ok := strings.CutPrefix(req.GetCredential(), req.GetIntegration()+"/credentials/")
	if ok {
		var perr error
		cred, perr = uuid.Parse(rest)
		ok = perr == nil && len(rest) == 36
	}
	v.Check(ok, "credential", "must be a credential of the integration: {integration}/credentials/{credential}")
	if err := v.Err(); err != nil {
		return nil, err
	}
	ack, err := h.d.Tokens.Acknowledge(ctx, name.Org, name.Integration, req.GetConsumer(), cred)
	if err != nil {
		return nil, err
	}
	c := ack.Consumer
	return &v1.AcknowledgeCredentialResponse{
		Consumer: &v1.CredentialConsumer{Consumer: c.Name, Credential: name.String() + "/credentials/" + c.Credential.String(),
			AcknowledgeTime: timestamppb.New(c.AcknowledgeTime), CreateTime: timestamppb.New(c.CreateTime)},
		RetirementBroughtForward: ack.BroughtForward,
	}, nil
}
