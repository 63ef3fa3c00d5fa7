package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) catalogCommand() *cobra.Command {
	var kind string
	var features []string
	cmd := &cobra.Command{
		Use:   "catalog [--kind defender|sentinel] [--feature FEATURE,...]",
		Short: "Show the permissions each integration kind and feature needs",
		Long: `Show the permission catalog: the application permissions, Azure roles and
directory roles an integration needs in the customer tenant. With --kind, only
that kind; with --feature as well, the base requirements plus those features'.`,
		Example: `  dzctl catalog
  dzctl catalog --kind defender --feature live_response
  dzctl catalog --kind sentinel -o json`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind: defender or sentinel")
	cmd.Flags().StringSliceVar(&features, "feature", nil, "with --kind: only these features (cloud_apps, live_response, exchange)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		req := &dzconnectv1.GetPermissionCatalogRequest{}
		var err error
		if cmd.Flags().Changed("kind") {
			if req.Kind, err = parseKind("--kind", kind); err != nil {
				return err
			}
		}
		if req.Features, err = parseFeatures("--feature", features); err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.catalog.GetPermissionCatalog(ctx, req)
		if err != nil {
			return err
		}
		p := inv.printer()
		if p.json {
			return p.protoJSON(resp)
		}
		fmt.Fprintf(inv.app.stdout, "Catalog version: %s\n\n", orDash(resp.GetVersion()))
		rows := make([][]string, 0, len(resp.GetPermissions()))
		for _, perm := range resp.GetPermissions() {
			feature := enumString(perm.GetFeature(), "_")
			if feature == "" {
				feature = "(base)"
			}
			rows = append(rows, []string{short(perm.GetKind()), feature, short(perm.GetType()),
				perm.GetResourceDisplayName(), perm.GetValue(), short(perm.GetRequirement())})
		}
		return p.table(resp, "permissions",
			[]string{"KIND", "FEATURE", "TYPE", "RESOURCE", "PERMISSION", "REQUIREMENT"}, rows)
	})
	return cmd
}
