package cli_test

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// The provisioner and admin-consent RPCs of fakeServer. The provisioner
// secret is kept in secrets under "<org>/provisioner".

const fakeConsentState = "c29tZS1zdGF0ZS1mb3ItdGhlLWZha2Utc2VydmVyLTEyMw"

func (f *fakeServer) SetOrganizationProvisioner(_ context.Context, req *dzconnectv1.SetOrganizationProvisionerRequest) (*dzconnectv1.SetOrganizationProvisionerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.orgs, req.GetName())
	if err != nil {
		return nil, err
	}
	o := f.orgs[i]
	o.ProvisionerClientId, o.Etag = req.GetClientId(), bump(o.GetEtag())
	f.secrets[o.GetName()+"/provisioner"] = req.GetClientSecret()
	return &dzconnectv1.SetOrganizationProvisionerResponse{Organization: o}, nil
}

func (f *fakeServer) GetAdminConsentLink(_ context.Context, req *dzconnectv1.GetAdminConsentLinkRequest) (*dzconnectv1.GetAdminConsentLinkResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.tenants, req.GetName())
	if err != nil {
		return nil, err
	}
	return &dzconnectv1.GetAdminConsentLinkResponse{
		Url:        "https://login.microsoftonline.com/" + f.tenants[i].GetEntraTenantId() + "/v2.0/adminconsent?client_id=prov&state=" + fakeConsentState,
		ExpireTime: timestamppb.New(fixedTime.AsTime().Add(time.Hour)),
	}, nil
}

func (f *fakeServer) CompleteAdminConsent(_ context.Context, req *dzconnectv1.CompleteAdminConsentRequest) (*dzconnectv1.CompleteAdminConsentResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.GetState() != fakeConsentState {
		return nil, status.Error(codes.InvalidArgument, "invalid state: is unknown")
	}
	if req.GetError() != "" || req.GetAdminConsent() != "True" {
		return nil, status.Errorf(codes.FailedPrecondition, "the tenant administrator did not grant admin consent: Microsoft returned %s", req.GetError())
	}
	for _, t := range f.tenants {
		if t.GetEntraTenantId() == req.GetTenant() {
			t.ProvisionerConsentTime, t.Etag = fixedTime, bump(t.GetEtag())
			return &dzconnectv1.CompleteAdminConsentResponse{Tenant: t}, nil
		}
	}
	return nil, status.Error(codes.FailedPrecondition, "admin consent came back from another tenant")
}
