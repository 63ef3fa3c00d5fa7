package cli

import (
	"context"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// integrationDeprovision is "dzctl integration deprovision".
func (inv *invocation) integrationDeprovision() *cobra.Command {
	var keep, wait bool
	cmd := &cobra.Command{
		Use:   "deprovision INTEGRATION [--keep-application] [--wait]",
		Short: "Remove what provisioning made in the tenant, then the integration",
		Long: `Deprovision a provisioned integration: dzconnect removes the Sentinel role
assignment it made, the service principal and the application (then both for
good from the tenant's deleted items), deletes the integration and destroys its
secrets in Vault. With --keep-application it detaches instead: it removes only
the role assignments and client secrets it added and its own records, and
leaves the application, its service principal and permissions in the tenant.

It runs as an operation; the command prints it, or with --wait follows it step
by step. The exit code with --wait is 0 when it succeeded, 4 when it failed or
was canceled. A customer-managed integration is refused: delete it with
"dzctl integration delete".`,
		Example: `  dzctl integration deprovision organizations/contoso/tenants/fabrikam/integrations/0190... --wait

  dzctl integration deprovision organizations/contoso/tenants/fabrikam/integrations/0190... --keep-application`,
		Args: exactArgs("INTEGRATION"),
	}
	fl := cmd.Flags()
	fl.BoolVar(&keep, "keep-application", false, "detach: keep the application, its service principal and permissions")
	fl.BoolVar(&wait, "wait", false, "follow the operation until it ends")
	run := inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		conn, err := inv.clientConn()
		if err != nil {
			return err
		}
		resp, err := dzconnectv1.NewProvisioningServiceClient(conn).DeprovisionIntegration(ctx, &dzconnectv1.DeprovisionIntegrationRequest{
			Name: name, RequestId: inv.requestID, KeepApplication: keep})
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
