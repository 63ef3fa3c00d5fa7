package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// fakeServer is a small in-memory dzconnect: enough behaviour for the CLI
// (names, etags, pagination, filters), and a record of every call.
type fakeServer struct {
	dzconnectv1.UnimplementedOrganizationServiceServer
	dzconnectv1.UnimplementedApiKeyServiceServer
	dzconnectv1.UnimplementedTenantServiceServer
	dzconnectv1.UnimplementedIntegrationServiceServer
	dzconnectv1.UnimplementedAuditServiceServer
	dzconnectv1.UnimplementedCatalogServiceServer

	// defaultPageSize is used when a request has page_size 0.
	defaultPageSize int

	mu              sync.Mutex
	seq             int
	calls           []call
	fail            map[string][]error // method name (e.g. "CreateTenant") -> errors to return, in order
	orgs            []*dzconnectv1.Organization
	apiKeys         []*dzconnectv1.ApiKey
	tenants         []*dzconnectv1.Tenant
	integrations    []*dzconnectv1.Integration
	secrets         map[string]string // integration name -> client secret
	apiKeyByRequest map[string]*dzconnectv1.ApiKey
	audit           []*dzconnectv1.AuditEvent

	// nextCheck is what CheckIntegration reports for an integration name
	// (default: a healthy check with one passed step); checks holds each
	// integration's recorded checks, newest first; checkDeadline is the time
	// left before the deadline of the latest CheckIntegration call (0: none).
	nextCheck     map[string]*dzconnectv1.Check
	checks        map[string][]*dzconnectv1.Check
	checkDeadline time.Duration
}

// call is one RPC the fake received.
type call struct {
	method string // short name, e.g. "CreateOrganization"
	md     metadata.MD
	req    proto.Message
}

var fixedTime = timestamppb.New(time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC))

func newFakeServer() *fakeServer {
	return &fakeServer{defaultPageSize: 2, fail: map[string][]error{}, secrets: map[string]string{}, apiKeyByRequest: map[string]*dzconnectv1.ApiKey{}}
}

func (f *fakeServer) register(s *grpc.Server) {
	dzconnectv1.RegisterOrganizationServiceServer(s, f)
	dzconnectv1.RegisterApiKeyServiceServer(s, f)
	dzconnectv1.RegisterTenantServiceServer(s, f)
	dzconnectv1.RegisterIntegrationServiceServer(s, f)
	dzconnectv1.RegisterAuditServiceServer(s, f)
	dzconnectv1.RegisterCatalogServiceServer(s, f)
}

// intercept records each call and returns injected failures.
func (f *fakeServer) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.calls = append(f.calls, call{method: method, md: md.Copy(), req: proto.Clone(req.(proto.Message))})
	var injected error
	if errs := f.fail[method]; len(errs) > 0 {
		injected, f.fail[method] = errs[0], errs[1:]
	}
	f.mu.Unlock()
	if injected != nil {
		return nil, injected
	}
	return handler(ctx, req)
}

// failNext makes the next calls of method fail with errs, in order.
func (f *fakeServer) failNext(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = append(f.fail[method], errs...)
}

// callsOf returns the recorded calls of method.
func (f *fakeServer) callsOf(method string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeServer) allCalls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeServer) nextID(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%d", prefix, f.seq)
}

// page returns one page of items, with "p<offset>" page tokens.
func page[T any](items []T, size int32, token string, def int) ([]T, string, error) {
	n := def
	if size > 0 {
		n = int(size)
	}
	start := 0
	if token != "" {
		var err error
		if start, err = strconv.Atoi(strings.TrimPrefix(token, "p")); err != nil || start > len(items) {
			return nil, "", status.Error(codes.InvalidArgument, "bad page_token")
		}
	}
	end := min(start+n, len(items))
	next := ""
	if end < len(items) {
		next = "p" + strconv.Itoa(end)
	}
	return items[start:end], next, nil
}

func findByName[T interface{ GetName() string }](items []T, name string) (int, error) {
	for i, it := range items {
		if it.GetName() == name {
			return i, nil
		}
	}
	return -1, status.Errorf(codes.NotFound, "%s not found", name)
}

func checkEtag(have, want string) error {
	if want != "" && want != have {
		return status.Error(codes.Aborted, "etag mismatch")
	}
	return nil
}

func bump(etag string) string { return etag + "+" }

// Organizations.

func (f *fakeServer) CreateOrganization(_ context.Context, req *dzconnectv1.CreateOrganizationRequest) (*dzconnectv1.CreateOrganizationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := proto.Clone(req.GetOrganization()).(*dzconnectv1.Organization)
	o.Name = "organizations/" + f.nextID("org-")
	o.CreateTime, o.UpdateTime, o.Etag = fixedTime, fixedTime, "e1"
	f.orgs = append(f.orgs, o)
	return &dzconnectv1.CreateOrganizationResponse{Organization: o}, nil
}

func (f *fakeServer) GetOrganization(_ context.Context, req *dzconnectv1.GetOrganizationRequest) (*dzconnectv1.GetOrganizationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.orgs, req.GetName())
	if err != nil {
		return nil, err
	}
	return &dzconnectv1.GetOrganizationResponse{Organization: f.orgs[i]}, nil
}

func (f *fakeServer) ListOrganizations(_ context.Context, req *dzconnectv1.ListOrganizationsRequest) (*dzconnectv1.ListOrganizationsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items, next, err := page(f.orgs, req.GetPageSize(), req.GetPageToken(), f.defaultPageSize)
	return &dzconnectv1.ListOrganizationsResponse{Organizations: items, NextPageToken: next}, err
}

func (f *fakeServer) UpdateOrganization(_ context.Context, req *dzconnectv1.UpdateOrganizationRequest) (*dzconnectv1.UpdateOrganizationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.orgs, req.GetOrganization().GetName())
	if err != nil {
		return nil, err
	}
	o := f.orgs[i]
	if err := checkEtag(o.GetEtag(), req.GetOrganization().GetEtag()); err != nil {
		return nil, err
	}
	if slices.Contains(req.GetUpdateMask().GetPaths(), "display_name") {
		o.DisplayName = req.GetOrganization().GetDisplayName()
	}
	o.Etag = bump(o.Etag)
	return &dzconnectv1.UpdateOrganizationResponse{Organization: o}, nil
}

func (f *fakeServer) DeleteOrganization(_ context.Context, req *dzconnectv1.DeleteOrganizationRequest) (*dzconnectv1.DeleteOrganizationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.orgs, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := checkEtag(f.orgs[i].GetEtag(), req.GetEtag()); err != nil {
		return nil, err
	}
	f.orgs = slices.Delete(f.orgs, i, i+1)
	return &dzconnectv1.DeleteOrganizationResponse{}, nil
}

// API keys.

const fakeAPIKeySecret = "dzk_live_0123456789abcdef"

func (f *fakeServer) CreateApiKey(_ context.Context, req *dzconnectv1.CreateApiKeyRequest) (*dzconnectv1.CreateApiKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.apiKeyByRequest[req.GetRequestId()]; ok && req.GetRequestId() != "" {
		return &dzconnectv1.CreateApiKeyResponse{ApiKey: prev}, nil // a replay: no secret
	}
	k := proto.Clone(req.GetApiKey()).(*dzconnectv1.ApiKey)
	f.apiKeyByRequest[req.GetRequestId()] = k
	k.Name = req.GetParent() + "/apiKeys/" + f.nextID("key-")
	k.KeyPrefix, k.CreateTime, k.UpdateTime, k.Etag = fakeAPIKeySecret[:8], fixedTime, fixedTime, "e1"
	f.apiKeys = append(f.apiKeys, k)
	return &dzconnectv1.CreateApiKeyResponse{ApiKey: k, Secret: fakeAPIKeySecret}, nil
}

func (f *fakeServer) GetApiKey(_ context.Context, req *dzconnectv1.GetApiKeyRequest) (*dzconnectv1.GetApiKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.apiKeys, req.GetName())
	if err != nil {
		return nil, err
	}
	return &dzconnectv1.GetApiKeyResponse{ApiKey: f.apiKeys[i]}, nil
}

func (f *fakeServer) ListApiKeys(_ context.Context, req *dzconnectv1.ListApiKeysRequest) (*dzconnectv1.ListApiKeysResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var mine []*dzconnectv1.ApiKey
	for _, k := range f.apiKeys {
		if strings.HasPrefix(k.GetName(), req.GetParent()+"/") {
			mine = append(mine, k)
		}
	}
	items, next, err := page(mine, req.GetPageSize(), req.GetPageToken(), f.defaultPageSize)
	return &dzconnectv1.ListApiKeysResponse{ApiKeys: items, NextPageToken: next}, err
}

func (f *fakeServer) UpdateApiKey(_ context.Context, req *dzconnectv1.UpdateApiKeyRequest) (*dzconnectv1.UpdateApiKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.apiKeys, req.GetApiKey().GetName())
	if err != nil {
		return nil, err
	}
	k := f.apiKeys[i]
	if slices.Contains(req.GetUpdateMask().GetPaths(), "display_name") {
		k.DisplayName = req.GetApiKey().GetDisplayName()
	}
	return &dzconnectv1.UpdateApiKeyResponse{ApiKey: k}, nil
}

func (f *fakeServer) DeleteApiKey(_ context.Context, req *dzconnectv1.DeleteApiKeyRequest) (*dzconnectv1.DeleteApiKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.apiKeys, req.GetName())
	if err != nil {
		return nil, err
	}
	f.apiKeys = slices.Delete(f.apiKeys, i, i+1)
	return &dzconnectv1.DeleteApiKeyResponse{}, nil
}

// Tenants.

func (f *fakeServer) CreateTenant(_ context.Context, req *dzconnectv1.CreateTenantRequest) (*dzconnectv1.CreateTenantResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := proto.Clone(req.GetTenant()).(*dzconnectv1.Tenant)
	t.Name = req.GetParent() + "/tenants/" + f.nextID("t-")
	t.CreateTime, t.UpdateTime, t.Etag = fixedTime, fixedTime, "e1"
	f.tenants = append(f.tenants, t)
	return &dzconnectv1.CreateTenantResponse{Tenant: t}, nil
}

func (f *fakeServer) GetTenant(_ context.Context, req *dzconnectv1.GetTenantRequest) (*dzconnectv1.GetTenantResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.tenants, req.GetName())
	if err != nil {
		return nil, err
	}
	return &dzconnectv1.GetTenantResponse{Tenant: f.tenants[i]}, nil
}

func (f *fakeServer) ListTenants(_ context.Context, req *dzconnectv1.ListTenantsRequest) (*dzconnectv1.ListTenantsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var mine []*dzconnectv1.Tenant
	for _, t := range f.tenants {
		if strings.HasPrefix(t.GetName(), req.GetParent()+"/") {
			mine = append(mine, t)
		}
	}
	items, next, err := page(mine, req.GetPageSize(), req.GetPageToken(), f.defaultPageSize)
	return &dzconnectv1.ListTenantsResponse{Tenants: items, NextPageToken: next}, err
}

func (f *fakeServer) UpdateTenant(_ context.Context, req *dzconnectv1.UpdateTenantRequest) (*dzconnectv1.UpdateTenantResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.tenants, req.GetTenant().GetName())
	if err != nil {
		return nil, err
	}
	t := f.tenants[i]
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "display_name":
			t.DisplayName = req.GetTenant().GetDisplayName()
		case "labels":
			t.Labels = req.GetTenant().GetLabels()
		}
	}
	return &dzconnectv1.UpdateTenantResponse{Tenant: t}, nil
}

func (f *fakeServer) DeleteTenant(_ context.Context, req *dzconnectv1.DeleteTenantRequest) (*dzconnectv1.DeleteTenantResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.tenants, req.GetName())
	if err != nil {
		return nil, err
	}
	f.tenants = slices.Delete(f.tenants, i, i+1)
	return &dzconnectv1.DeleteTenantResponse{}, nil
}

// Integrations.

func (f *fakeServer) CreateIntegration(_ context.Context, req *dzconnectv1.CreateIntegrationRequest) (*dzconnectv1.CreateIntegrationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := proto.Clone(req.GetIntegration()).(*dzconnectv1.Integration)
	in.Name = req.GetParent() + "/integrations/" + f.nextID("i-")
	in.ManagementMode = dzconnectv1.ManagementMode_MANAGEMENT_MODE_CUSTOMER_MANAGED
	in.State = dzconnectv1.IntegrationState_INTEGRATION_STATE_UNVERIFIED
	in.CreateTime, in.UpdateTime, in.Etag = fixedTime, fixedTime, "e1"
	if in.Credential == nil {
		in.Credential = &dzconnectv1.Credential{}
	}
	in.Credential.Version, in.Credential.CreateTime = 1, fixedTime
	f.secrets[in.Name] = req.GetClientSecret()
	f.integrations = append(f.integrations, in)
	return &dzconnectv1.CreateIntegrationResponse{Integration: in}, nil
}

func (f *fakeServer) GetIntegration(_ context.Context, req *dzconnectv1.GetIntegrationRequest) (*dzconnectv1.GetIntegrationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.integrations, req.GetName())
	if err != nil {
		return nil, err
	}
	return &dzconnectv1.GetIntegrationResponse{Integration: f.integrations[i]}, nil
}

func (f *fakeServer) ListIntegrations(_ context.Context, req *dzconnectv1.ListIntegrationsRequest) (*dzconnectv1.ListIntegrationsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prefix := strings.TrimSuffix(req.GetParent(), "-") // .../tenants/- matches every tenant
	var match []*dzconnectv1.Integration
	for _, in := range f.integrations {
		if !strings.HasPrefix(in.GetName(), prefix) ||
			(req.GetKind() != 0 && in.GetKind() != req.GetKind()) ||
			(req.GetState() != 0 && in.GetState() != req.GetState()) ||
			(req.GetExpireBefore() != nil && !expiresBefore(in, req.GetExpireBefore())) {
			continue
		}
		match = append(match, in)
	}
	items, next, err := page(match, req.GetPageSize(), req.GetPageToken(), f.defaultPageSize)
	return &dzconnectv1.ListIntegrationsResponse{Integrations: items, NextPageToken: next}, err
}

func (f *fakeServer) UpdateIntegration(_ context.Context, req *dzconnectv1.UpdateIntegrationRequest) (*dzconnectv1.UpdateIntegrationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.integrations, req.GetIntegration().GetName())
	if err != nil {
		return nil, err
	}
	in := f.integrations[i]
	if s := req.GetClientSecret(); s != "" {
		f.secrets[in.Name] = s
		in.Credential.Version++
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "display_name":
			in.DisplayName = req.GetIntegration().GetDisplayName()
		case "features":
			in.Features = req.GetIntegration().GetFeatures()
		case "sentinel":
			in.Sentinel = req.GetIntegration().GetSentinel()
		case "credential.expire_time":
			in.Credential.ExpireTime = req.GetIntegration().GetCredential().GetExpireTime()
		}
	}
	return &dzconnectv1.UpdateIntegrationResponse{Integration: in}, nil
}

func (f *fakeServer) DeleteIntegration(_ context.Context, req *dzconnectv1.DeleteIntegrationRequest) (*dzconnectv1.DeleteIntegrationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := findByName(f.integrations, req.GetName())
	if err != nil {
		return nil, err
	}
	f.integrations = slices.Delete(f.integrations, i, i+1)
	return &dzconnectv1.DeleteIntegrationResponse{}, nil
}

// Audit and catalog.

func (f *fakeServer) ListAuditEvents(_ context.Context, req *dzconnectv1.ListAuditEventsRequest) (*dzconnectv1.ListAuditEventsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []*dzconnectv1.AuditEvent
	for _, e := range f.audit {
		if strings.HasPrefix(e.GetName(), req.GetParent()+"/") && (req.GetResource() == "" || e.GetResource() == req.GetResource()) {
			match = append(match, e)
		}
	}
	items, next, err := page(match, req.GetPageSize(), req.GetPageToken(), f.defaultPageSize)
	return &dzconnectv1.ListAuditEventsResponse{AuditEvents: items, NextPageToken: next}, err
}

func (f *fakeServer) GetPermissionCatalog(_ context.Context, req *dzconnectv1.GetPermissionCatalogRequest) (*dzconnectv1.GetPermissionCatalogResponse, error) {
	all := []*dzconnectv1.Permission{
		{
			Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER, Type: dzconnectv1.PermissionType_PERMISSION_TYPE_APPLICATION,
			ResourceDisplayName: "Microsoft Graph", Value: "SecurityAlert.Read.All", Requirement: dzconnectv1.Requirement_REQUIREMENT_REQUIRED,
		},
		{
			Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_365_DEFENDER, Feature: dzconnectv1.Feature_FEATURE_LIVE_RESPONSE,
			Type: dzconnectv1.PermissionType_PERMISSION_TYPE_APPLICATION, ResourceDisplayName: "WindowsDefenderATP",
			Value: "Machine.LiveResponse", Requirement: dzconnectv1.Requirement_REQUIREMENT_OPTIONAL,
		},
		{
			Kind: dzconnectv1.IntegrationKind_INTEGRATION_KIND_MICROSOFT_SENTINEL, Type: dzconnectv1.PermissionType_PERMISSION_TYPE_AZURE_ROLE,
			ResourceDisplayName: "Azure Resource Manager", Value: "Microsoft Sentinel Reader", Requirement: dzconnectv1.Requirement_REQUIREMENT_REQUIRED,
		},
	}
	var out []*dzconnectv1.Permission
	for _, p := range all {
		if req.GetKind() == 0 || p.GetKind() == req.GetKind() {
			out = append(out, p)
		}
	}
	return &dzconnectv1.GetPermissionCatalogResponse{Version: "2026-11-01", Permissions: out}, nil
}

// expiresBefore reports whether in's credential has an expiry before t.
func expiresBefore(in *dzconnectv1.Integration, t *timestamppb.Timestamp) bool {
	exp := in.GetCredential().GetExpireTime()
	return exp != nil && exp.AsTime().Before(t.AsTime())
}

// Checks.

func (f *fakeServer) CheckIntegration(ctx context.Context, req *dzconnectv1.CheckIntegrationRequest) (*dzconnectv1.CheckIntegrationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkDeadline = 0
	if dl, ok := ctx.Deadline(); ok {
		f.checkDeadline = time.Until(dl)
	}
	i, err := findByName(f.integrations, req.GetName())
	if err != nil {
		return nil, err
	}
	c := &dzconnectv1.Check{
		Outcome: dzconnectv1.IntegrationState_INTEGRATION_STATE_HEALTHY,
		Summary: "All checks passed.",
		Steps:   []*dzconnectv1.CheckStep{{Name: "secret", Status: dzconnectv1.CheckStepStatus_CHECK_STEP_STATUS_PASSED}},
	}
	if next := f.nextCheck[req.GetName()]; next != nil {
		c = proto.Clone(next).(*dzconnectv1.Check)
	}
	if f.checks == nil {
		f.checks = map[string][]*dzconnectv1.Check{}
	}
	c.Name = req.GetName() + "/checks/" + f.nextID("c-")
	if c.Trigger == "" {
		c.Trigger = "api"
	}
	if c.StartTime == nil {
		c.StartTime, c.EndTime = fixedTime, fixedTime
	}
	f.checks[req.GetName()] = append([]*dzconnectv1.Check{c}, f.checks[req.GetName()]...)
	in := f.integrations[i]
	in.State, in.LastCheckTime = c.GetOutcome(), c.GetEndTime()
	return &dzconnectv1.CheckIntegrationResponse{Check: c, Integration: in}, nil
}

func (f *fakeServer) ListChecks(_ context.Context, req *dzconnectv1.ListChecksRequest) (*dzconnectv1.ListChecksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := findByName(f.integrations, req.GetParent()); err != nil {
		return nil, err
	}
	items, next, err := page(f.checks[req.GetParent()], req.GetPageSize(), req.GetPageToken(), f.defaultPageSize)
	return &dzconnectv1.ListChecksResponse{Checks: items, NextPageToken: next}, err
}
