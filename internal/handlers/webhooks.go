package handlers

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	v1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
	"github.com/dropzoneai/dzconnect/internal/apperr"
	"github.com/dropzoneai/dzconnect/internal/page"
	"github.com/dropzoneai/dzconnect/internal/resource"
	"github.com/dropzoneai/dzconnect/internal/webhook"
)

type webhooks struct {
	v1.UnimplementedWebhookServiceServer
	d Deps
}

var webhookEvents = map[v1.WebhookEvent]webhook.Event{
	v1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED:  webhook.EventStateChanged,
	v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRING:        webhook.EventCredentialExpiring,
	v1.WebhookEvent_WEBHOOK_EVENT_OPERATION_FINISHED:         webhook.EventOperationFinished,
	v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_CONSUMER_STALE:  webhook.EventConsumerStale,
	v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_RENEWAL_FAILED:  webhook.EventCredentialRenewalFailed,
	v1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRY_MISMATCH: webhook.EventCredentialExpiryMismatch,
}

var webhookEventToProto = reverse(webhookEvents)

func webhookToProto(w webhook.Webhook) *v1.Webhook {
	out := &v1.Webhook{
		Name:       webhook.Name(w.Org, w.ID),
		Url:        w.URL,
		Disabled:   w.Disabled,
		CreateTime: ts(w.CreateTime),
		UpdateTime: ts(w.UpdateTime),
		Etag:       etag(w.Version),
	}
	for _, e := range w.Events {
		out.Events = append(out.Events, webhookEventToProto[e])
	}
	return out
}

func deliveryToProto(d webhook.Delivery) *v1.WebhookDelivery {
	out := &v1.WebhookDelivery{
		Name:            webhook.DeliveryName(d.Org, d.Webhook, d.ID),
		Event:           webhookEventToProto[d.Event],
		Resource:        d.Resource,
		Status:          string(d.Status),
		Attempts:        int32(d.Attempts),
		LastStatusCode:  int32(d.LastStatusCode),
		LastError:       d.LastError,
		CreateTime:      ts(d.CreateTime),
		DeliverTime:     tsp(d.DeliverTime),
		LastAttemptTime: tsp(d.LastAttemptTime),
		Payload:         string(d.Payload),
	}
	if d.Status == webhook.StatusPending {
		out.NextAttemptTime = ts(d.NextAttemptTime)
	}
	if d.RedeliveryOf != 0 {
		out.RedeliveryOf = webhook.DeliveryName(d.Org, d.Webhook, d.RedeliveryOf)
	}
	return out
}

// parseDeliveryName parses organizations/{o}/webhooks/{w}/deliveries/{d}.
func parseDeliveryName(field, name string) (webhookName, int64, error) {
	const pattern = "organizations/{organization}/webhooks/{webhook}/deliveries/{delivery}"
	i := strings.LastIndex(name, "/deliveries/")
	if name == "" {
		return webhookName{}, 0, apperr.Invalid(field, "required")
	}
	if i < 0 {
		return webhookName{}, 0, apperr.Invalid(field, "must have the form %s", pattern)
	}
	n, err := parseWebhookName(field, name[:i])
	if err != nil {
		return webhookName{}, 0, apperr.Invalid(field, "must have the form %s", pattern)
	}
	raw := name[i+len("/deliveries/"):]
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != raw {
		return webhookName{}, 0, apperr.Invalid(field, "must have the form %s, with a positive number as the delivery", pattern)
	}
	return n, id, nil
}

// RedeliverWebhookDelivery sends a delivery's event again.
func (h *webhooks) RedeliverWebhookDelivery(ctx context.Context, req *v1.RedeliverWebhookDeliveryRequest) (*v1.RedeliverWebhookDeliveryResponse, error) {
	var v apperr.Violations
	n, id, err := parseDeliveryName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.RedeliverWebhookDeliveryRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	d, err := h.d.Webhooks.Redeliver(ctx, n.Org, n.Webhook, id, key)
	if err != nil {
		return nil, err
	}
	return &v1.RedeliverWebhookDeliveryResponse{Delivery: deliveryToProto(d)}, nil
}

// webhookName is a parsed organizations/{organization}/webhooks/{webhook}.
type webhookName struct{ Org, Webhook uuid.UUID }

// parseWebhookName parses a webhook's resource name; field names the
// request field.
func parseWebhookName(field, name string) (webhookName, error) {
	const pattern = "organizations/{organization}/webhooks/{webhook}"
	if name == "" {
		return webhookName{}, apperr.Invalid(field, "required")
	}
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[2] != "webhooks" {
		return webhookName{}, apperr.Invalid(field, "must have the form %s", pattern)
	}
	o, err := resource.ParseOrg(field, strings.Join(parts[:2], "/"))
	if err != nil {
		return webhookName{}, apperr.Invalid(field, "must have the form %s, with UUIDs as IDs", pattern)
	}
	id, err := uuid.Parse(parts[3])
	if err != nil || len(parts[3]) != 36 {
		return webhookName{}, apperr.Invalid(field, "must have the form %s, with UUIDs as IDs", pattern)
	}
	return webhookName{Org: o.Org, Webhook: id}, nil
}

func checkWebhookURL(v *apperr.Violations, field, s string) {
	if err := webhook.CheckURL(s); err != nil {
		v.Add(field, "%s", err)
	}
}

// checkWebhookEvents validates events and returns them deduplicated.
func checkWebhookEvents(v *apperr.Violations, field string, in []v1.WebhookEvent) []webhook.Event {
	out := []webhook.Event{}
	if !v.CheckLen(field, len(in)) {
		return out
	}
	for _, pe := range in {
		e, ok := webhookEvents[pe]
		switch {
		case !ok:
			v.Add(field, "unknown event %s", pe)
		case !slices.Contains(out, e):
			out = append(out, e)
		}
	}
	if len(in) == 0 {
		v.Add(field, "at least one event: WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED, WEBHOOK_EVENT_CREDENTIAL_EXPIRING or WEBHOOK_EVENT_OPERATION_FINISHED")
	}
	return out
}

func (h *webhooks) CreateWebhook(ctx context.Context, req *v1.CreateWebhookRequest) (*v1.CreateWebhookResponse, error) {
	var v apperr.Violations
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetWebhook()
	if in == nil {
		v.Add("webhook", "required")
	}
	checkWebhookURL(&v, "webhook.url", in.GetUrl())
	events := checkWebhookEvents(&v, "webhook.events", in.GetEvents())
	key := requestKey(&v, req.GetRequestId(), req, func(m proto.Message) { m.(*v1.CreateWebhookRequest).RequestId = "" })
	if err := v.Err(); err != nil {
		return nil, err
	}
	w, secret, err := h.d.Webhooks.Create(ctx, webhook.Webhook{
		Org: parent.Org, URL: in.GetUrl(), Events: events, Disabled: in.GetDisabled(),
	}, key)
	if err != nil {
		return nil, err
	}
	return &v1.CreateWebhookResponse{Webhook: webhookToProto(w), SigningSecret: secret}, nil
}

func (h *webhooks) GetWebhook(ctx context.Context, req *v1.GetWebhookRequest) (*v1.GetWebhookResponse, error) {
	n, err := parseWebhookName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	w, err := h.d.Webhooks.Get(ctx, n.Org, n.Webhook)
	if err != nil {
		return nil, err
	}
	return &v1.GetWebhookResponse{Webhook: webhookToProto(w)}, nil
}

func (h *webhooks) ListWebhooks(ctx context.Context, req *v1.ListWebhooksRequest) (*v1.ListWebhooksResponse, error) {
	parent, err := resource.ParseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.Webhooks.List(ctx, parent.Org, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListWebhooksResponse{}
	for _, w := range rows {
		resp.Webhooks = append(resp.Webhooks, webhookToProto(w))
	}
	if more {
		resp.NextPageToken = page.Next(rows[len(rows)-1].ID, req.GetParent())
	}
	return resp, nil
}

func (h *webhooks) UpdateWebhook(ctx context.Context, req *v1.UpdateWebhookRequest) (*v1.UpdateWebhookResponse, error) {
	var v apperr.Violations
	in := req.GetWebhook()
	n, err := parseWebhookName("webhook.name", in.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "webhook.etag", in.GetEtag())
	paths := maskPaths(&v, req.GetUpdateMask(), []string{"url", "events", "disabled"}, func(p string) bool {
		switch p {
		case "url":
			return in.GetUrl() != ""
		case "events":
			return len(in.GetEvents()) > 0
		}
		// false is indistinguishable from unset: re-enabling names "disabled" in update_mask.
		return in.GetDisabled()
	})
	if paths["url"] {
		checkWebhookURL(&v, "webhook.url", in.GetUrl())
	}
	var events []webhook.Event
	if paths["events"] {
		events = checkWebhookEvents(&v, "webhook.events", in.GetEvents())
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, apperr.Invalid("update_mask", "nothing to update")
	}
	w, err := h.d.Webhooks.Update(ctx, n.Org, n.Webhook, version, func(w *webhook.Webhook) error {
		if paths["url"] {
			w.URL = in.GetUrl()
		}
		if paths["events"] {
			w.Events = events
		}
		if paths["disabled"] {
			w.Disabled = in.GetDisabled()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v1.UpdateWebhookResponse{Webhook: webhookToProto(w)}, nil
}

func (h *webhooks) DeleteWebhook(ctx context.Context, req *v1.DeleteWebhookRequest) (*v1.DeleteWebhookResponse, error) {
	var v apperr.Violations
	n, err := parseWebhookName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	version := parseEtag(&v, "etag", req.GetEtag())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := h.d.Webhooks.Delete(ctx, n.Org, n.Webhook, version); err != nil {
		return nil, err
	}
	return &v1.DeleteWebhookResponse{}, nil
}

func (h *webhooks) ListWebhookDeliveries(ctx context.Context, req *v1.ListWebhookDeliveriesRequest) (*v1.ListWebhookDeliveriesResponse, error) {
	n, err := parseWebhookName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	p, err := parsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	rows, err := h.d.Webhooks.ListDeliveries(ctx, n.Org, n.Webhook, p)
	if err != nil {
		return nil, err
	}
	rows, more := trim(rows, p.Size)
	resp := &v1.ListWebhookDeliveriesResponse{}
	for _, d := range rows {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d))
	}
	if more {
		resp.NextPageToken = page.NextSeq(rows[len(rows)-1].ID, req.GetParent())
	}
	return resp, nil
}
