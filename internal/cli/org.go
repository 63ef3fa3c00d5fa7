package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) orgCommand() *cobra.Command {
	cmd := group("org", "Manage organizations (service admin)", "orgs", "organization", "organizations")
	cmd.AddCommand(inv.orgCreate(), inv.orgGet(), inv.orgList(), inv.orgUpdate(), inv.orgDelete(), inv.orgSetProvisioner())
	return cmd
}

func (inv *invocation) orgCreate() *cobra.Command {
	var displayName string
	cmd := &cobra.Command{
		Use:     "create --display-name NAME",
		Short:   "Create an organization",
		Example: `  dzctl org create --display-name "Contoso MSSP"`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "human-readable name (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "display-name"); err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.orgs.CreateOrganization(ctx, &dzconnectv1.CreateOrganizationRequest{
			Organization: &dzconnectv1.Organization{DisplayName: displayName},
			RequestId:    inv.requestID,
		})
		if err != nil {
			return err
		}
		return inv.printOrg(resp.GetOrganization())
	})
	return cmd
}

func (inv *invocation) orgGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get ORG",
		Short:   "Show an organization",
		Example: `  dzctl org get organizations/contoso`,
		Args:    exactArgs("ORG"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := orgName("organization", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.orgs.GetOrganization(ctx, &dzconnectv1.GetOrganizationRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printOrg(resp.GetOrganization())
	})
	return cmd
}

func (inv *invocation) orgList() *cobra.Command {
	var pages pageFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List organizations, oldest first",
		Args:  noArgs,
	}
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, _ []string) error {
		c, err := inv.clients()
		if err != nil {
			return err
		}
		orgs, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.Organization, string, error) {
			resp, err := c.orgs.ListOrganizations(ctx, &dzconnectv1.ListOrganizationsRequest{PageSize: size, PageToken: token})
			return resp.GetOrganizations(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(orgs))
		for _, o := range orgs {
			rows = append(rows, []string{o.GetName(), o.GetDisplayName(), timeString(o.GetCreateTime())})
		}
		return inv.printer().table(&dzconnectv1.ListOrganizationsResponse{Organizations: orgs}, "organizations",
			[]string{"NAME", "DISPLAY NAME", "CREATED"}, rows)
	})
	return cmd
}

func (inv *invocation) orgUpdate() *cobra.Command {
	var displayName, etag, overlap, threshold string
	cmd := &cobra.Command{
		Use:   "update ORG [--display-name NAME] [--credential-overlap D] [--renewal-threshold D] [--etag ETAG]",
		Short: "Change an organization's display name or credential settings",
		Example: `  dzctl org update organizations/contoso --display-name "Contoso Security"
  # Keep replaced secrets 3 days; renew when 45 days remain
  dzctl org update organizations/contoso --credential-overlap 3d --renewal-threshold 45d`,
		Args: exactArgs("ORG"),
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "new human-readable name")
	cmd.Flags().StringVar(&overlap, "credential-overlap", "", "how long a rotated-out credential keeps working, e.g. 7d or 36h (0 to 90 days)")
	cmd.Flags().StringVar(&threshold, "renewal-threshold", "", "renew a provisioned integration's credential when this much lifetime is left, e.g. 30d (1 to 180 days, more than the overlap)")
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the organization still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name, err := orgName("organization", args[0])
		if err != nil {
			return err
		}
		org := &dzconnectv1.Organization{Name: name, Etag: etag}
		var mask fieldmaskpb.FieldMask
		if cmd.Flags().Changed("display-name") {
			org.DisplayName = displayName
			mask.Paths = append(mask.Paths, "display_name")
		}
		if cmd.Flags().Changed("credential-overlap") {
			d, err := parseDuration("--credential-overlap", overlap)
			if err != nil {
				return err
			}
			org.CredentialOverlap = durationpb.New(d)
			mask.Paths = append(mask.Paths, "credential_overlap")
		}
		if cmd.Flags().Changed("renewal-threshold") {
			d, err := parseDuration("--renewal-threshold", threshold)
			if err != nil {
				return err
			}
			org.CredentialRenewalThreshold = durationpb.New(d)
			mask.Paths = append(mask.Paths, "credential_renewal_threshold")
		}
		if len(mask.Paths) == 0 {
			return usageErrorf("nothing to update: give --display-name, --credential-overlap or --renewal-threshold")
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.orgs.UpdateOrganization(ctx, &dzconnectv1.UpdateOrganizationRequest{Organization: org, UpdateMask: &mask})
		if err != nil {
			return err
		}
		return inv.printOrg(resp.GetOrganization())
	})
	return cmd
}

func (inv *invocation) orgDelete() *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "delete ORG [--etag ETAG]",
		Short: "Delete an organization that has no tenants",
		Args:  exactArgs("ORG"),
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the organization still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := orgName("organization", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		if _, err := c.orgs.DeleteOrganization(ctx, &dzconnectv1.DeleteOrganizationRequest{Name: name, Etag: etag}); err != nil {
			return err
		}
		return inv.printer().deleted(name)
	})
	return cmd
}

func (inv *invocation) printOrg(o *dzconnectv1.Organization) error {
	return inv.printer().resource(o, []field{
		{"Name", o.GetName()},
		{"Display name", o.GetDisplayName()},
		{"Provisioner client ID", o.GetProvisionerClientId()},
		{"Credential overlap", daysString(o.GetCredentialOverlap())},
		{"Renewal threshold", daysString(o.GetCredentialRenewalThreshold())},
		{"Created", timeString(o.GetCreateTime())},
		{"Updated", timeString(o.GetUpdateTime())},
		{"Etag", o.GetEtag()},
	})
}

// daysString shows a duration setting in days when it is whole days.
func daysString(d *durationpb.Duration) string {
	if d == nil {
		return ""
	}
	v := d.AsDuration()
	if v != 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}
