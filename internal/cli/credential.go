package cli

import (
	"context"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// credentialCommand is "dzctl credential": an integration's credentials.
func (inv *invocation) credentialCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "List, rotate and acknowledge an integration's credentials (docs/credentials.md)",
	}
	cmd.AddCommand(inv.credentialList(), inv.credentialRotate(), inv.credentialAck())
	return cmd
}

func (inv *invocation) credentialList() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list INTEGRATION",
		Short:   "List an integration's credentials: state, key ID, hint, expiry, overlap end (never values)",
		Example: `  dzctl credential list organizations/contoso/tenants/fabrikam/integrations/0190...`,
		Args:    exactArgs("INTEGRATION"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.integrations.GetIntegration(ctx, &dzconnectv1.GetIntegrationRequest{Name: name})
		if err != nil {
			return err
		}
		creds := resp.GetIntegration().GetCredentials()
		rows := make([][]string, 0, len(creds))
		for _, cr := range creds {
			rows = append(rows, []string{cr.GetName(), enumString(cr.GetState(), "-"), enumString(cr.GetType(), "-"),
				enumString(cr.GetSource(), "-"), cr.GetKeyId(), cr.GetHint(), timeString(cr.GetEndTime()), timeString(cr.GetOverlapEndTime())})
		}
		return inv.printer().table(&dzconnectv1.Integration{Name: name, Credentials: creds}, "credentials",
			[]string{"NAME", "STATE", "TYPE", "SOURCE", "KEY ID", "HINT", "EXPIRES", "OVERLAP ENDS"}, rows)
	})
	return cmd
}

func (inv *invocation) credentialRotate() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "rotate INTEGRATION [--wait]",
		Short: "Rotate a provisioned integration's client secret with an overlap",
		Long: `Rotate a provisioned integration's client secret: dzconnect adds a new secret
(lifetime fitted to the tenant's policy), stores it in Vault, verifies it (a
token and the probes with the new secret only), then makes it active; the old
secret keeps working until the organization's overlap ends (default 7 days)
and is then removed from Entra and destroyed in Vault. A failed verification
leaves the old secret active and removes the new one.

It runs as an operation; the command prints it, or with --wait follows it step
by step (exit code 4 when it failed or was canceled). A rotation already
running on the integration is returned as it is.`,
		Example: `  dzctl credential rotate organizations/contoso/tenants/fabrikam/integrations/0190... --wait`,
		Args:    exactArgs("INTEGRATION"),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the operation until it ends")
	run := inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		conn, err := inv.clientConn()
		if err != nil {
			return err
		}
		resp, err := dzconnectv1.NewProvisioningServiceClient(conn).RotateCredential(ctx, &dzconnectv1.RotateCredentialRequest{
			Name: name, RequestId: inv.requestID})
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
