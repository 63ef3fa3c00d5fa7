package cli

import (
	"context"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) tenantCommand() *cobra.Command {
	cmd := group("tenant", "Manage customer tenants (Microsoft Entra directories)", "tenants")
	cmd.AddCommand(inv.tenantCreate(), inv.tenantGet(), inv.tenantList(), inv.tenantUpdate(), inv.tenantDelete(),
		inv.tenantConsentLink(), inv.tenantCompleteConsent())
	return cmd
}

func (inv *invocation) tenantCreate() *cobra.Command {
	var org, entraID, cloud, displayName string
	var labels []string
	cmd := &cobra.Command{
		Use:   "create --org ORG --entra-tenant-id GUID --display-name NAME [--cloud CLOUD] [--label KEY=VALUE ...]",
		Short: "Register a customer's Microsoft tenant",
		Example: `  dzctl tenant create --org contoso --entra-tenant-id 0b6f2e3c-1d4a-4c8e-9f00-5a7b8c9d0e1f \
      --display-name "Fabrikam" --label customer=fabrikam --label tier=gold
  dzctl tenant create --org contoso --entra-tenant-id 7d1c... --cloud us-gov-gcc-high --display-name "Agency"`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	cmd.Flags().StringVar(&entraID, "entra-tenant-id", "", "Entra directory (tenant) ID, a GUID (required)")
	cmd.Flags().StringVar(&cloud, "cloud", "global", "Microsoft cloud: global, us-gov-gcc, us-gov-gcc-high, us-gov-dod or china")
	cmd.Flags().StringVar(&displayName, "display-name", "", "human-readable name (required)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label KEY=VALUE; repeat for more")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org", "entra-tenant-id", "display-name"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		t := &dzconnectv1.Tenant{EntraTenantId: entraID, DisplayName: displayName}
		if t.Cloud, err = parseCloud("--cloud", cloud); err != nil {
			return err
		}
		if len(labels) > 0 {
			if t.Labels, err = parseLabels("--label", labels); err != nil {
				return err
			}
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.tenants.CreateTenant(ctx, &dzconnectv1.CreateTenantRequest{Parent: parent, Tenant: t, RequestId: inv.requestID})
		if err != nil {
			return err
		}
		return inv.printTenant(resp.GetTenant())
	})
	return cmd
}

func (inv *invocation) tenantGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get TENANT",
		Short:   "Show a tenant",
		Example: `  dzctl tenant get organizations/contoso/tenants/fabrikam`,
		Args:    exactArgs("TENANT"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := tenantName("tenant", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.tenants.GetTenant(ctx, &dzconnectv1.GetTenantRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printTenant(resp.GetTenant())
	})
	return cmd
}

func (inv *invocation) tenantList() *cobra.Command {
	var org string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List an organization's tenants, oldest first",
		Example: `  dzctl tenant list --org contoso -o json`,
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
		c, err := inv.clients()
		if err != nil {
			return err
		}
		tenants, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.Tenant, string, error) {
			resp, err := c.tenants.ListTenants(ctx, &dzconnectv1.ListTenantsRequest{Parent: parent, PageSize: size, PageToken: token})
			return resp.GetTenants(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(tenants))
		for _, t := range tenants {
			rows = append(rows, []string{t.GetName(), t.GetDisplayName(), t.GetEntraTenantId(), short(t.GetCloud()), labelsString(t.GetLabels())})
		}
		return inv.printer().table(&dzconnectv1.ListTenantsResponse{Tenants: tenants}, "tenants",
			[]string{"NAME", "DISPLAY NAME", "ENTRA TENANT ID", "CLOUD", "LABELS"}, rows)
	})
	return cmd
}

func (inv *invocation) tenantUpdate() *cobra.Command {
	var displayName, etag string
	var labels []string
	var clearLabels bool
	cmd := &cobra.Command{
		Use:   "update TENANT [--display-name NAME] [--label KEY=VALUE ... | --clear-labels] [--etag ETAG]",
		Short: "Change a tenant's display name or labels",
		Long: `Change a tenant's display name or labels. Only the fields whose flags are
given are updated. --label replaces the whole set of labels with the ones given;
--clear-labels removes them all.`,
		Example: `  dzctl tenant update organizations/contoso/tenants/fabrikam --label customer=fabrikam --label tier=silver`,
		Args:    exactArgs("TENANT"),
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "new human-readable name")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label KEY=VALUE; repeat for more; replaces all labels")
	cmd.Flags().BoolVar(&clearLabels, "clear-labels", false, "remove every label")
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the tenant still has this etag")
	cmd.MarkFlagsMutuallyExclusive("label", "clear-labels")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name, err := tenantName("tenant", args[0])
		if err != nil {
			return err
		}
		t := &dzconnectv1.Tenant{Name: name, Etag: etag}
		var mask fieldmaskpb.FieldMask
		if cmd.Flags().Changed("display-name") {
			t.DisplayName = displayName
			mask.Paths = append(mask.Paths, "display_name")
		}
		switch {
		case cmd.Flags().Changed("label"):
			if t.Labels, err = parseLabels("--label", labels); err != nil {
				return err
			}
			mask.Paths = append(mask.Paths, "labels")
		case clearLabels:
			mask.Paths = append(mask.Paths, "labels")
		}
		if len(mask.Paths) == 0 {
			return usageErrorf("nothing to update: give --display-name, --label or --clear-labels")
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.tenants.UpdateTenant(ctx, &dzconnectv1.UpdateTenantRequest{Tenant: t, UpdateMask: &mask})
		if err != nil {
			return err
		}
		return inv.printTenant(resp.GetTenant())
	})
	return cmd
}

func (inv *invocation) tenantDelete() *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "delete TENANT [--etag ETAG]",
		Short: "Delete a tenant that has no integrations",
		Args:  exactArgs("TENANT"),
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the tenant still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := tenantName("tenant", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		if _, err := c.tenants.DeleteTenant(ctx, &dzconnectv1.DeleteTenantRequest{Name: name, Etag: etag}); err != nil {
			return err
		}
		return inv.printer().deleted(name)
	})
	return cmd
}

func (inv *invocation) printTenant(t *dzconnectv1.Tenant) error {
	return inv.printer().resource(t, []field{
		{"Name", t.GetName()},
		{"Display name", t.GetDisplayName()},
		{"Entra tenant ID", t.GetEntraTenantId()},
		{"Cloud", short(t.GetCloud())},
		{"Labels", labelsString(t.GetLabels())},
		{"Provisioner consent", timeString(t.GetProvisionerConsentTime())},
		{"Created", timeString(t.GetCreateTime())},
		{"Updated", timeString(t.GetUpdateTime())},
		{"Etag", t.GetEtag()},
	})
}
