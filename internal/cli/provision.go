package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// integrationProvision is "dzctl integration provision".
func (inv *invocation) integrationProvision() *cobra.Command {
	var tenant, kind, workspace, role, certFile, displayName, redirect string
	var features []string
	var lifetime time.Duration
	var wait, ascii bool
	cmd := &cobra.Command{
		Use:   "provision --tenant TENANT --kind defender|sentinel [--workspace ARM_ID] [--role reader|responder] [--wait]",
		Short: "Provision an integration in a tenant with the organization's provisioner",
		Long: `Provision an integration: dzconnect registers the Entra application, its
service principal and permissions, the Sentinel role and a client secret in the
tenant with the organization's provisioner (consented there), then verifies it.
It runs as an operation; the command prints it, or with --wait follows it step
by step and ends with the check report. The exit code with --wait is 0 when the
integration works, 4 when the operation failed or was canceled.

When the provisioner is not consented in the tenant the error carries the
tenant's admin-consent link (--consent-redirect-uri makes it a single-use link
dzconnect records, as "dzctl tenant consent-link").`,
		Example: `  dzctl integration provision --tenant organizations/contoso/tenants/fabrikam --kind defender --wait

  dzctl integration provision --tenant organizations/contoso/tenants/fabrikam --kind sentinel \
      --workspace /subscriptions/9a8b.../resourceGroups/rg-sentinel/providers/Microsoft.OperationalInsights/workspaces/fabrikam-law \
      --role responder --wait`,
		Args: noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&tenant, "tenant", "", "tenant, organizations/ORG/tenants/TENANT (required)")
	fl.StringVar(&kind, "kind", "", "defender (microsoft-365-defender) or sentinel (microsoft-sentinel) (required)")
	fl.StringSliceVar(&features, "feature", nil, "Defender features: cloud_apps, live_response, exchange (comma-separated or repeated)")
	fl.StringVar(&displayName, "display-name", "", `the application's display name (default "Dropzone AI")`)
	fl.StringVar(&workspace, "workspace", "", "Sentinel: the workspace's ARM ID (required for sentinel)")
	fl.StringVar(&role, "role", "", "Sentinel: reader (default) or responder")
	fl.DurationVar(&lifetime, "secret-lifetime", 0, "client secret lifetime, e.g. 4320h (default: the longest the tenant's policy allows, at most 2 years)")
	fl.StringVar(&certFile, "certificate", "", "PEM file of a public certificate to register (used when the tenant's policy blocks secrets)")
	fl.StringVar(&redirect, "consent-redirect-uri", "", "redirect URI for the admin-consent link returned when the provisioner is not consented")
	fl.BoolVar(&wait, "wait", false, "follow the operation until it ends and print the check report")
	fl.BoolVar(&ascii, "ascii", false, "with --wait: mark check steps with ASCII words instead of symbols")
	run := inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "tenant", "kind"); err != nil {
			return err
		}
		parent, err := tenantName("--tenant", tenant)
		if err != nil {
			return err
		}
		spec := &dzconnectv1.ProvisioningSpec{DisplayName: displayName}
		if spec.Kind, err = parseKind("--kind", kind); err != nil {
			return err
		}
		if spec.Features, err = parseFeatures("--feature", features); err != nil {
			return err
		}
		if workspace != "" {
			spec.Workspace = &dzconnectv1.ProvisioningWorkspace{ResourceId: workspace}
		}
		switch strings.ToLower(role) {
		case "":
		case "reader":
			spec.SentinelRole = dzconnectv1.SentinelRole_SENTINEL_ROLE_READER
		case "responder":
			spec.SentinelRole = dzconnectv1.SentinelRole_SENTINEL_ROLE_RESPONDER
		default:
			return usageErrorf("invalid --role %q: want reader or responder", role)
		}
		if cmd.Flags().Changed("secret-lifetime") {
			spec.SecretLifetime = durationpb.New(lifetime)
		}
		if certFile != "" {
			b, err := os.ReadFile(certFile)
			if err != nil {
				return usageErrorf("reading --certificate: %v", err)
			}
			spec.CertificatePem = string(b)
		}
		conn, err := inv.clientConn()
		if err != nil {
			return err
		}
		resp, err := dzconnectv1.NewProvisioningServiceClient(conn).ProvisionIntegration(ctx, &dzconnectv1.ProvisionIntegrationRequest{
			Parent: parent, Spec: spec, RequestId: inv.requestID, ConsentRedirectUri: redirect})
		if err != nil {
			return err
		}
		op := resp.GetOperation()
		if !wait {
			return inv.printOperation(op)
		}
		done, err := inv.followOperation(ctx, dzconnectv1.NewOperationServiceClient(conn), op.GetName(), op)
		if err != nil {
			return err
		}
		if err := inv.printOperation(done); err != nil {
			return err
		}
		// The check report of the verify step, when it ran.
		checks, err := dzconnectv1.NewIntegrationServiceClient(conn).ListChecks(ctx, &dzconnectv1.ListChecksRequest{Parent: done.GetTarget(), PageSize: 1})
		if err == nil && len(checks.GetChecks()) > 0 {
			p := inv.printer()
			if p.json {
				err = p.protoJSON(checks.GetChecks()[0])
			} else {
				if _, err := fmt.Fprintln(p.out); err != nil {
					return err
				}
				err = writeCheckReport(p.out, done.GetTarget(), checks.GetChecks()[0], ascii)
			}
			if err != nil {
				return err
			}
		}
		if done.GetState() != dzconnectv1.OperationState_OPERATION_STATE_SUCCEEDED {
			return &exitCodeError{code: ExitOperationNotSucceeded}
		}
		return nil
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if wait && !cmd.Flags().Changed("timeout") {
			inv.timeout = 0 // follow as long as the operation runs
		}
		return run(cmd, args)
	}
	return cmd
}
