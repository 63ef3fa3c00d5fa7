package handlers

import (
	"context"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/verify"
)

// Checker runs and lists checks.
type Checker interface {
	Run(ctx context.Context, org, id uuid.UUID, trigger string) (verify.Result, error)
	List(ctx context.Context, org, integrationID uuid.UUID, p page.Request) ([]verify.Check, error)
}

var stepStatuses = map[verify.StepStatus]v1.CheckStepStatus{
	verify.StepPassed:      v1.CheckStepStatus_CHECK_STEP_STATUS_PASSED,
	verify.StepFailed:      v1.CheckStepStatus_CHECK_STEP_STATUS_FAILED,
	verify.StepWarning:     v1.CheckStepStatus_CHECK_STEP_STATUS_WARNING,
	verify.StepSkipped:     v1.CheckStepStatus_CHECK_STEP_STATUS_SKIPPED,
	verify.StepUnavailable: v1.CheckStepStatus_CHECK_STEP_STATUS_UNAVAILABLE,
	verify.StepPropagating: v1.CheckStepStatus_CHECK_STEP_STATUS_PROPAGATING,
	verify.StepBlocked:     v1.CheckStepStatus_CHECK_STEP_STATUS_BLOCKED,
}

func checkToProto(c verify.Check) *v1.Check {
	out := &v1.Check{
		Name:           resource.Integration{Org: c.Org, Tenant: c.Tenant, Integration: c.Integration}.String() + "/checks/" + c.ID.String(),
		Outcome:        stateToProto[c.Outcome],
		Trigger:        c.Trigger,
		StartTime:      ts(c.Start),
		EndTime:        ts(c.End),
		CatalogVersion: c.CatalogVersion,
		Summary:        c.Summary,
		SettleEndTime:  tsp(c.SettleEnd),
		Permissions: &v1.PermissionReport{
			Source:          c.Permissions.Source,
			Granted:         c.Permissions.Granted,
			MissingRequired: c.Permissions.MissingRequired,
			MissingOptional: c.Permissions.MissingOptional,
			Extra:           c.Permissions.Extra,
		},
	}
	for _, s := range c.Steps {
		out.Steps = append(out.Steps, &v1.CheckStep{
			Name: s.Name, Status: stepStatuses[s.Status], Duration: durationpb.New(s.Duration),
			ErrorCode: s.ErrorCode, Message: s.Message, Remedy: s.Remedy, IfPersists: s.IfPersists,
		})
	}
	return out
}

func (h *integrations) CheckIntegration(ctx context.Context, req *v1.CheckIntegrationRequest) (*v1.CheckIntegrationResponse, error) {
	n, err := resource.ParseIntegration("name", req.GetName())
	if err != nil {
		return nil, err
	}
	cur, err := h.d.Integrations.Get(ctx, n.Org, n.Integration)
	if err != nil || cur.Tenant != n.Tenant {
		return nil, notFoundUnless(err, req.GetName())
	}
	r, err := h.d.Checks.Run(ctx, n.Org, n.Integration, verify.TriggerAPI)
	if err != nil {
		return nil, err
	}
	return &v1.CheckIntegrationResponse{Check: checkToProto(r.Check), Integration: integrationToProto(r.Integration)}, nil
}

func (h *integrations) ListChecks(ctx context.Context, req *v1.ListChecksRequest) (*v1.ListChecksResponse, error) {
	n, err := resource.ParseIntegration("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	cur, err := h.d.Integrations.Get(ctx, n.Org, n.Integration)
	if err != nil || cur.Tenant != n.Tenant {
		return nil, notFoundUnless(err, req.GetParent())
	}
	rows, err := h.d.Checks.List(ctx, n.Org, n.Integration, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListChecksResponse{}
	for _, c := range rows {
		resp.Checks = append(resp.Checks, checkToProto(c))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID, req.GetParent())
	}
	return resp, nil
}
