package handlers

import (
	"context"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/audit"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
)

type auditEvents struct {
	v1.UnimplementedAuditServiceServer
	d Deps
}

func (h *auditEvents) ListAuditEvents(ctx context.Context, req *v1.ListAuditEventsRequest) (*v1.ListAuditEventsResponse, error) {
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent(), req.GetResource())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.Audit.ListAuditEvents(ctx, parent.Org, audit.Filter{Resource: req.GetResource()}, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListAuditEventsResponse{}
	for _, e := range rows {
		resp.AuditEvents = append(resp.AuditEvents, &v1.AuditEvent{
			Name:       resource.AuditEventName(e.Org, e.Seq),
			Actor:      e.Actor,
			Method:     e.Method,
			Resource:   e.Resource,
			RequestId:  e.RequestID,
			CreateTime: ts(e.CreateTime),
		})
	}
	if more {
		resp.NextPageToken = page.NextSeq(rows[len(rows)-1].Seq, req.GetParent(), req.GetResource())
	}
	return resp, nil
}
