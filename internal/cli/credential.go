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
		Short: "List, rotate, generate and acknowledge an integration's credentials (docs/credentials.md)",
	}
	cmd.AddCommand(inv.credentialList(), inv.credentialRotate(), inv.credentialGenerateCert(), inv.credentialAck())
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
	return inv.credentialOperation("rotate INTEGRATION [--wait]",
		"Rotate a provisioned integration's client secret (or generated certificate) with an overlap",
		`Rotate a provisioned integration's client secret: dzconnect adds a new secret
(lifetime fitted to the tenant's policy), stores it in Vault, verifies it (a
token and the probes with the new secret only), then makes it active; the old
secret keeps working until the organization's overlap ends (default 7 days)
and is then removed from Entra and destroyed in Vault. A failed verification
leaves the old secret active and removes the new one. An integration whose
active credential is a certificate dzconnect generated gets a new certificate
the same way.

It runs as an operation; the command prints it, or with --wait follows it step
by step (exit code 4 when it failed or was canceled). A rotation already
running on the integration is returned as it is.`,
		`  dzctl credential rotate organizations/contoso/tenants/fabrikam/integrations/0190... --wait`,
		func(ctx context.Context, c dzconnectv1.ProvisioningServiceClient, name string) (*dzconnectv1.Operation, error) {
			resp, err := c.RotateCredential(ctx, &dzconnectv1.RotateCredentialRequest{Name: name, RequestId: inv.requestID})
			return resp.GetOperation(), err
		})
}

func (inv *invocation) credentialGenerateCert() *cobra.Command {
	return inv.credentialOperation("generate-cert INTEGRATION [--wait]",
		"Give a provisioned integration a certificate credential dzconnect generates (switches it from its secret)",
		`Generate a certificate credential for a provisioned integration: dzconnect
makes an RSA key pair, keeps the private key only in Vault, uploads the
self-signed public certificate to the application (its other keys kept),
verifies a token by client assertion and the probes with the new certificate
only, then makes it active. The previous credential (client secret or
certificate) keeps working until the organization's overlap ends and is then
removed from Entra and destroyed in Vault. This switches an integration from
a secret to a certificate without downtime; credential rotate then rotates
the certificate.

It runs as an operation (kind rotate); the command prints it, or with --wait
follows it step by step (exit code 4 when it failed or was canceled).`,
		`  dzctl credential generate-cert organizations/contoso/tenants/fabrikam/integrations/0190... --wait`,
		func(ctx context.Context, c dzconnectv1.ProvisioningServiceClient, name string) (*dzconnectv1.Operation, error) {
			resp, err := c.GenerateCertificateCredential(ctx, &dzconnectv1.GenerateCertificateCredentialRequest{Name: name, RequestId: inv.requestID})
			return resp.GetOperation(), err
		})
}

// credentialOperation is a command that starts a credential operation on
// an integration and prints it, or follows it with --wait.
func (inv *invocation) credentialOperation(use, short, long, example string,
	start func(ctx context.Context, c dzconnectv1.ProvisioningServiceClient, name string) (*dzconnectv1.Operation, error)) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: exactArgs("INTEGRATION")}
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
		op, err := start(ctx, dzconnectv1.NewProvisioningServiceClient(conn), name)
		if err != nil {
			return err
		}
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
