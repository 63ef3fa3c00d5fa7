package handlers

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/auth"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type apiKeys struct {
	v1.UnimplementedApiKeyServiceServer
	d Deps
}

func keyToProto(k auth.APIKey) *v1.ApiKey {
	return &v1.ApiKey{
		Name:        resource.APIKey{Org: k.Org, Key: k.ID}.String(),
		DisplayName: k.DisplayName,
		Role:        roleToProto[k.Role],
		KeyPrefix:   k.KeyPrefix,
		CreateTime:  ts(k.CreateTime),
		UpdateTime:  ts(k.UpdateTime),
		ExpireTime:  tsp(k.ExpireTime),
		Etag:        etag(k.Version),
	}
}

func (h *apiKeys) CreateApiKey(ctx context.Context, req *v1.CreateApiKeyRequest) (*v1.CreateApiKeyResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetApiKey()
	if in == nil {
		v.Add("api_key", "required")
	}
	checkDisplayName(&v, "api_key.display_name", in.GetDisplayName(), true)
	role, ok := roles[in.GetRole()]
	v.Check(ok, "api_key.role", "must be ROLE_ADMIN, ROLE_OPERATOR, ROLE_VIEWER or ROLE_CONSUMER")
	var expire *time.Time
	if in.GetExpireTime() != nil {
		t := in.GetExpireTime().AsTime()
		v.Check(in.GetExpireTime().IsValid() && t.After(time.Now()), "api_key.expire_time", "must be a valid time in the future")
		expire = &t
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.CreateApiKeyRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	secret, prefix, hash := auth.NewKey()
	k, created, err := h.d.APIKeys.CreateAPIKey(ctx, auth.APIKey{
		Org: parent.Org, ID: uuid.Must(uuid.NewV7()), DisplayName: in.GetDisplayName(),
		Role: role, KeyPrefix: prefix, Hash: hash, ExpireTime: expire,
	}, key)
	if err != nil {
		return nil, err
	}
	resp := &v1.CreateApiKeyResponse{ApiKey: keyToProto(k)}
	if created {
		resp.Secret = secret
	}
	return resp, nil
}

func (h *apiKeys) GetApiKey(ctx context.Context, req *v1.GetApiKeyRequest) (*v1.GetApiKeyResponse, error) {
	n, err := resource.ParseAPIKey("name", req.GetName())
	if err != nil {
		return nil, err
	}
	k, err := h.d.APIKeys.GetAPIKey(ctx, n.Org, n.Key)
	if err != nil {
		return nil, err
	}
	return &v1.GetApiKeyResponse{ApiKey: keyToProto(k)}, nil
}

func (h *apiKeys) ListApiKeys(ctx context.Context, req *v1.ListApiKeysRequest) (*v1.ListApiKeysResponse, error) {
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.APIKeys.ListAPIKeys(ctx, parent.Org, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListApiKeysResponse{}
	for _, k := range rows {
		resp.ApiKeys = append(resp.ApiKeys, keyToProto(k))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID, req.GetParent())
	}
	return resp, nil
}

func (h *apiKeys) UpdateApiKey(ctx context.Context, req *v1.UpdateApiKeyRequest) (*v1.UpdateApiKeyResponse, error) {
	var v apperr.Violations
	in := req.GetApiKey()
	n, err := resource.ParseAPIKey("api_key.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "api_key.etag", in.GetEtag())
	paths := maskPaths(&v, req.GetUpdateMask(), []string{"display_name"}, func(string) bool { return in.GetDisplayName() != "" })
	if paths["display_name"] {
		checkDisplayName(&v, "api_key.display_name", in.GetDisplayName(), true)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	k, err := h.d.APIKeys.UpdateAPIKey(ctx, n.Org, n.Key, version, func(k *auth.APIKey) error {
		if paths["display_name"] {
			k.DisplayName = in.GetDisplayName()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateApiKeyResponse{ApiKey: keyToProto(k)}, nil
}

func (h *apiKeys) DeleteApiKey(ctx context.Context, req *v1.DeleteApiKeyRequest) (*v1.DeleteApiKeyResponse, error) {
	var v apperr.Violations
	n, err := resource.ParseAPIKey("name", req.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := h.d.APIKeys.DeleteAPIKey(ctx, n.Org, n.Key, version); err != nil {
		return nil, err
	}
	return &v1.DeleteApiKeyResponse{}, nil
}
