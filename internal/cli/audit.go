package cli

import (
	"context"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) auditCommand() *cobra.Command {
	cmd := group("audit", "Read an organization's audit trail (admin)")
	cmd.AddCommand(inv.auditList())
	return cmd
}

func (inv *invocation) auditList() *cobra.Command {
	var org, resource string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG [--resource NAME]",
		Short: "List audit events, newest first",
		Example: `  dzctl audit list --org contoso --limit 20
  dzctl audit list --org contoso --resource organizations/contoso/tenants/fabrikam`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	cmd.Flags().StringVar(&resource, "resource", "", "only events about this resource name")
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		events, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.AuditEvent, string, error) {
			resp, err := c.audit.ListAuditEvents(ctx, &dzconnectv1.ListAuditEventsRequest{
				Parent: parent, Resource: resource, PageSize: size, PageToken: token,
			})
			return resp.GetAuditEvents(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(events))
		for _, e := range events {
			rows = append(rows, []string{timeString(e.GetCreateTime()), e.GetActor(), e.GetMethod(), e.GetResource(), e.GetRequestId()})
		}
		return inv.printer().table(&dzconnectv1.ListAuditEventsResponse{AuditEvents: events}, "audit events",
			[]string{"TIME", "ACTOR", "METHOD", "RESOURCE", "REQUEST ID"}, rows)
	})
	return cmd
}
