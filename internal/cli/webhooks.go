package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) webhookCommand() *cobra.Command {
	cmd := group("webhook", "Manage webhooks: HTTPS endpoints told of integration state changes", "webhooks")
	cmd.AddCommand(inv.webhookCreate(), inv.webhookGet(), inv.webhookList(), inv.webhookUpdate(), inv.webhookDelete(),
		inv.webhookDeliveries(), inv.webhookRedeliver())
	return cmd
}

// webhookClient returns the WebhookService client on the invocation's
// connection.
func (inv *invocation) webhookClient() (dzconnectv1.WebhookServiceClient, error) {
	conn, err := inv.clientConn()
	if err != nil {
		return nil, err
	}
	return dzconnectv1.NewWebhookServiceClient(conn), nil
}

func webhookName(flag, s string) (string, error) {
	if _, err := resourceName(flag, s, "organizations", "webhooks"); err != nil {
		return "", usageErrorf("invalid %s %q: want organizations/ORG/webhooks/WEBHOOK", flag, s)
	}
	return s, nil
}

var webhookEventAliases = map[string]string{"state-changed": "integration-state-changed"}

// parseWebhookEvents reads events: state-changed (integration-state-changed)
// or credential-expiring, or their full enum names.
func parseWebhookEvents(flag string, in []string) ([]dzconnectv1.WebhookEvent, error) {
	var out []dzconnectv1.WebhookEvent
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			n, err := parseEnum(flag, dzconnectv1.WebhookEvent(0).Descriptor(), part, webhookEventAliases)
			if err != nil {
				return nil, err
			}
			out = append(out, dzconnectv1.WebhookEvent(n))
		}
	}
	return out, nil
}

func webhookEventsString(es []dzconnectv1.WebhookEvent) string {
	parts := make([]string, 0, len(es))
	for _, e := range es {
		parts = append(parts, short(e))
	}
	return strings.Join(parts, ",")
}

var allWebhookEvents = []dzconnectv1.WebhookEvent{
	dzconnectv1.WebhookEvent_WEBHOOK_EVENT_INTEGRATION_STATE_CHANGED,
	dzconnectv1.WebhookEvent_WEBHOOK_EVENT_CREDENTIAL_EXPIRING,
}

func (inv *invocation) webhookCreate() *cobra.Command {
	var org, url string
	var events []string
	var disabled bool
	cmd := &cobra.Command{
		Use:   "create --org ORG --url URL [--event EVENT ...] [--disabled]",
		Short: "Create a webhook; its signing secret is printed once",
		Long: `Create a webhook. Events: state-changed (an integration's outcome changed)
and credential-expiring (a client secret entered the expiry warning window);
default: both. The URL must be https (http only for loopback hosts).

The signing secret is printed once, on standard output, and never shown again:
store it where the receiver can read it. With -o json it is the
"signingSecret" field of the response. See docs/webhooks.md to verify
signatures.`,
		Example: `  dzctl webhook create --org contoso --url https://hooks.example.com/dzconnect
  dzctl webhook create --org contoso --url https://soc.example.com/in --event state-changed -o json | jq -r .signingSecret`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	cmd.Flags().StringVar(&url, "url", "", "https endpoint receiving the deliveries (required)")
	cmd.Flags().StringArrayVar(&events, "event", nil, "state-changed or credential-expiring; repeat for both (default: both)")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "create it disabled (it receives nothing until enabled)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org", "url"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		w := &dzconnectv1.Webhook{Url: url, Disabled: disabled, Events: allWebhookEvents}
		if len(events) > 0 {
			if w.Events, err = parseWebhookEvents("--event", events); err != nil {
				return err
			}
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		resp, err := c.CreateWebhook(ctx, &dzconnectv1.CreateWebhookRequest{Parent: parent, Webhook: w, RequestId: inv.requestID})
		if err != nil {
			return err
		}
		p := inv.printer()
		if p.json {
			err = p.protoJSON(resp)
		} else {
			var extra []field
			if resp.GetSigningSecret() != "" {
				extra = append(extra, field{"Signing secret", resp.GetSigningSecret()})
			}
			err = inv.printWebhook(resp.GetWebhook(), extra...)
		}
		if err != nil {
			return err
		}
		if resp.GetSigningSecret() == "" {
			fmt.Fprintln(inv.app.stderr, "Warning: no signing secret returned: this request ID was used before, and the secret is shown only to the first call.")
		} else {
			fmt.Fprintln(inv.app.stderr, "Warning: store the signing secret now: it is not shown again.")
		}
		return nil
	})
	return cmd
}

func (inv *invocation) webhookGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get WEBHOOK",
		Short:   "Show a webhook",
		Example: `  dzctl webhook get organizations/contoso/webhooks/0190...`,
		Args:    exactArgs("WEBHOOK"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := webhookName("webhook", args[0])
		if err != nil {
			return err
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		resp, err := c.GetWebhook(ctx, &dzconnectv1.GetWebhookRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printWebhook(resp.GetWebhook())
	})
	return cmd
}

func (inv *invocation) webhookList() *cobra.Command {
	var org string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List an organization's webhooks, oldest first",
		Example: `  dzctl webhook list --org contoso`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		hooks, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.Webhook, string, error) {
			resp, err := c.ListWebhooks(ctx, &dzconnectv1.ListWebhooksRequest{Parent: parent, PageSize: size, PageToken: token})
			return resp.GetWebhooks(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(hooks))
		for _, w := range hooks {
			rows = append(rows, []string{w.GetName(), w.GetUrl(), webhookEventsString(w.GetEvents()), strconv.FormatBool(w.GetDisabled())})
		}
		return inv.printer().table(&dzconnectv1.ListWebhooksResponse{Webhooks: hooks}, "webhooks",
			[]string{"NAME", "URL", "EVENTS", "DISABLED"}, rows)
	})
	return cmd
}

func (inv *invocation) webhookUpdate() *cobra.Command {
	var url, etag string
	var events []string
	var disabled bool
	cmd := &cobra.Command{
		Use:   "update WEBHOOK [--url URL] [--event EVENT ...] [--disabled=true|false] [--etag ETAG]",
		Short: "Change a webhook's URL, events, or disable/enable it",
		Long: `Change a webhook's URL, events or disabled flag. Only the fields whose flags
are given are updated; --event replaces the whole set. --disabled=false
enables a disabled webhook. The signing secret does not change.`,
		Example: `  dzctl webhook update organizations/contoso/webhooks/0190... --url https://new.example.com/hook
  dzctl webhook update organizations/contoso/webhooks/0190... --disabled=false`,
		Args: exactArgs("WEBHOOK"),
	}
	cmd.Flags().StringVar(&url, "url", "", "new https endpoint")
	cmd.Flags().StringArrayVar(&events, "event", nil, "state-changed or credential-expiring; repeat for both; replaces all events")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "disable (true) or enable (false) the webhook")
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the webhook still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name, err := webhookName("webhook", args[0])
		if err != nil {
			return err
		}
		w := &dzconnectv1.Webhook{Name: name, Etag: etag}
		var mask fieldmaskpb.FieldMask
		if cmd.Flags().Changed("url") {
			w.Url = url
			mask.Paths = append(mask.Paths, "url")
		}
		if cmd.Flags().Changed("event") {
			if w.Events, err = parseWebhookEvents("--event", events); err != nil {
				return err
			}
			mask.Paths = append(mask.Paths, "events")
		}
		if cmd.Flags().Changed("disabled") {
			w.Disabled = disabled
			mask.Paths = append(mask.Paths, "disabled")
		}
		if len(mask.Paths) == 0 {
			return usageErrorf("nothing to update: give --url, --event or --disabled")
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		resp, err := c.UpdateWebhook(ctx, &dzconnectv1.UpdateWebhookRequest{Webhook: w, UpdateMask: &mask})
		if err != nil {
			return err
		}
		return inv.printWebhook(resp.GetWebhook())
	})
	return cmd
}

func (inv *invocation) webhookDelete() *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "delete WEBHOOK [--etag ETAG]",
		Short: "Delete a webhook, its delivery log and its signing secret",
		Args:  exactArgs("WEBHOOK"),
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the webhook still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := webhookName("webhook", args[0])
		if err != nil {
			return err
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		if _, err := c.DeleteWebhook(ctx, &dzconnectv1.DeleteWebhookRequest{Name: name, Etag: etag}); err != nil {
			return err
		}
		return inv.printer().deleted(name)
	})
	return cmd
}

func (inv *invocation) webhookDeliveries() *cobra.Command {
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "deliveries WEBHOOK",
		Short:   "List a webhook's deliveries, newest first",
		Example: `  dzctl webhook deliveries organizations/contoso/webhooks/0190... --limit 20`,
		Args:    exactArgs("WEBHOOK"),
	}
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := webhookName("webhook", args[0])
		if err != nil {
			return err
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		ds, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.WebhookDelivery, string, error) {
			resp, err := c.ListWebhookDeliveries(ctx, &dzconnectv1.ListWebhookDeliveriesRequest{Parent: name, PageSize: size, PageToken: token})
			return resp.GetDeliveries(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(ds))
		for _, d := range ds {
			code := ""
			if d.GetLastStatusCode() != 0 {
				code = strconv.Itoa(int(d.GetLastStatusCode()))
			}
			rows = append(rows, []string{deliveryID(d.GetName()), timeString(d.GetCreateTime()),
				short(d.GetEvent()), d.GetStatus(), strconv.Itoa(int(d.GetAttempts())), orDash(timeString(d.GetLastAttemptTime())),
				orDash(timeString(d.GetNextAttemptTime())), code, oneLine(d.GetLastError()), d.GetResource(), orDash(deliveryID(d.GetRedeliveryOf()))})
		}
		return inv.printer().table(&dzconnectv1.ListWebhookDeliveriesResponse{Deliveries: ds}, "deliveries",
			[]string{"ID", "CREATED", "EVENT", "STATUS", "ATTEMPTS", "LAST ATTEMPT", "NEXT ATTEMPT", "LAST STATUS", "LAST ERROR", "INTEGRATION", "REDELIVERY OF"}, rows)
	})
	return cmd
}

// deliveryID is the last segment of a delivery's name ("" for "").
func deliveryID(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// webhookRedeliver is "dzctl webhook redeliver DELIVERY".
func (inv *invocation) webhookRedeliver() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redeliver DELIVERY",
		Short: "Send a delivery's event again (a new delivery of the same payload)",
		Long: `Send a delivery's event again: a new delivery of the same event and payload,
with its own attempt history (its "redelivery of" names the original), sent
now and retried on the usual schedule. A delivered or failed delivery can be
redelivered; a pending one already has its next attempt scheduled. With
--request-id, a retry of this command returns the same redelivery.`,
		Example: `  dzctl webhook redeliver organizations/contoso/webhooks/0190.../deliveries/42
  dzctl webhook deliveries organizations/contoso/webhooks/0190...   # the new one is listed first`,
		Args: exactArgs("DELIVERY"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		i := strings.LastIndex(args[0], "/deliveries/")
		if i < 0 {
			return usageErrorf("DELIVERY must have the form organizations/{organization}/webhooks/{webhook}/deliveries/{delivery}")
		}
		if _, err := webhookName("DELIVERY", args[0][:i]); err != nil {
			return err
		}
		c, err := inv.webhookClient()
		if err != nil {
			return err
		}
		resp, err := c.RedeliverWebhookDelivery(ctx, &dzconnectv1.RedeliverWebhookDeliveryRequest{Name: args[0], RequestId: inv.requestID})
		if err != nil {
			return err
		}
		d := resp.GetDelivery()
		return inv.printer().resource(resp, []field{
			{"Name", d.GetName()},
			{"Event", short(d.GetEvent())},
			{"Status", d.GetStatus()},
			{"Redelivery of", d.GetRedeliveryOf()},
			{"Integration", d.GetResource()},
			{"Created", timeString(d.GetCreateTime())},
			{"Next attempt", orDash(timeString(d.GetNextAttemptTime()))},
		})
	})
	return cmd
}

func (inv *invocation) printWebhook(w *dzconnectv1.Webhook, extra ...field) error {
	return inv.printer().resource(w, append([]field{
		{"Name", w.GetName()},
		{"URL", w.GetUrl()},
		{"Events", webhookEventsString(w.GetEvents())},
		{"Disabled", strconv.FormatBool(w.GetDisabled())},
		{"Created", timeString(w.GetCreateTime())},
		{"Updated", timeString(w.GetUpdateTime())},
		{"Etag", w.GetEtag()},
	}, extra...))
}
