package integration

import (
	"context"

	"github.com/google/uuid"

	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/tenant"
	"github.com/dropzoneai/dzconnect/internal/uow"
)

// Where an integration kind cannot run (issue 10 item 4).

// SentinelChinaRetirement is the day Microsoft Sentinel stops in Microsoft
// Azure operated by 21Vianet, and SentinelChinaSource the page that says
// so (the notice heads every Sentinel page of the China docs: "2026 年 8 月
// 18 日,根据世纪互联发布的公告,所有 Microsoft Sentinel 功能将在中国 Azure
// 正式停用").
const (
	SentinelChinaRetirement = "2026-08-18"
	SentinelChinaSource     = "https://docs.azure.cn/zh-cn/sentinel/hunting-with-rest-api"
)

// ReasonKindRetiredInCloud is the error reason of a kind refused in a cloud.
const ReasonKindRetiredInCloud = "KIND_RETIRED_IN_CLOUD"

// CloudRetirement says why kind cannot work in cloud ("" when it can): a
// sentence naming the retirement and its source, used as the refusal of a
// new integration and as the remedy of an existing one's check.
func CloudRetirement(kind Kind, cloud tenant.Cloud) string {
	if kind == KindSentinel && cloud == tenant.CloudChina {
		return "Microsoft Sentinel is retired in Microsoft Azure operated by 21Vianet (China) on " + SentinelChinaRetirement +
			" (" + SentinelChinaSource + "): a Sentinel integration cannot work in a China tenant. Remove it, or " +
			"migrate the workspace to a Sentinel offering in another cloud and integrate that tenant instead."
	}
	return ""
}

// CheckCloud refuses a new integration of kind in a tenant of cloud where
// the kind is retired: FailedPrecondition KIND_RETIRED_IN_CLOUD, with the
// retirement date and its source in the error's metadata.
func CheckCloud(kind Kind, cloud tenant.Cloud) error {
	why := CloudRetirement(kind, cloud)
	if why == "" {
		return nil
	}
	e := apperr.New(apperr.FailedPrecondition, "%s", why).WithReason(ReasonKindRetiredInCloud)
	e.Metadata = map[string]string{"cloud": string(cloud), "kind": string(kind), "retired": SentinelChinaRetirement, "source": SentinelChinaSource}
	return e
}

// TenantReader reads the tenant an integration is created in (its cloud
// decides whether the kind can work there).
type TenantReader interface {
	GetTenant(ctx context.Context, tx uow.Tx, org, id uuid.UUID) (tenant.Tenant, error)
}

// checkTenantCloud applies CheckCloud to in's tenant when the service
// can read tenants; a tenant that does not exist is left to the create's
// own NotFound.
func (s *Service) checkTenantCloud(ctx context.Context, in Integration) error {
	if s.tenants == nil {
		return nil
	}
	t, err := s.tenants.GetTenant(ctx, s.tx.Conn(), in.Org, in.Tenant)
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return CheckCloud(in.Kind, t.Cloud)
}
