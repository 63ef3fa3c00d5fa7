package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// tokenAPIAliases are the --api spellings beside the enum's short forms.
var tokenAPIAliases = map[string]string{"la": "log_analytics", "loganalytics": "log_analytics", "cloudapps": "cloud_apps",
	"mde": "defender", "azure": "arm"}

// tokenCommand is "dzctl token": an access token for scripts.
func (inv *invocation) tokenCommand() *cobra.Command {
	var api string
	cmd := &cobra.Command{
		Use:   "token INTEGRATION --api graph|defender|log-analytics|arm|exchange|cloud-apps",
		Short: "Print a Microsoft access token for one of an integration's APIs (for scripts)",
		Long: `Print a Microsoft access token for one of the integration's APIs, obtained by
dzconnect with the integration's active credential, so the script never holds
the secret (docs/credentials.md, "Tokens instead of secrets"). The table output
is the token alone on one line; -o json adds its expiry, API, scope and the
credential it came from. Tokens are cached by dzconnect and refreshed before
they expire; ask again rather than keeping one past its expiry.

Needs a key with the consumer, operator or admin role.`,
		Example: `  TOKEN=$(dzctl token organizations/contoso/tenants/fabrikam/integrations/0190... --api graph)
  curl -H "Authorization: Bearer $TOKEN" 'https://graph.microsoft.com/v1.0/security/alerts_v2?$top=1'`,
		Args: exactArgs("INTEGRATION"),
	}
	cmd.Flags().StringVar(&api, "api", "graph", "graph, defender, log-analytics, arm, exchange or cloud-apps")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		n, err := parseEnum("--api", dzconnectv1.MicrosoftApi(0).Descriptor(), api, tokenAPIAliases)
		if err != nil {
			return err
		}
		conn, err := inv.clientConn()
		if err != nil {
			return err
		}
		resp, err := dzconnectv1.NewTokenServiceClient(conn).IssueAccessToken(ctx, &dzconnectv1.IssueAccessTokenRequest{
			Integration: name, Api: dzconnectv1.MicrosoftApi(n)})
		if err != nil {
			return err
		}
		p := inv.printer()
		if p.json {
			return p.protoJSON(resp)
		}
		_, err = fmt.Fprintln(p.out, resp.GetAccessToken())
		return err
	})
	return cmd
}

// credentialAck is "dzctl credential ack".
func (inv *invocation) credentialAck() *cobra.Command {
	var consumer, credential string
	cmd := &cobra.Command{
		Use:   "ack INTEGRATION --consumer NAME --credential CREDENTIAL",
		Short: "Report which credential a platform that reads the secret now uses",
		Long: `Report that the consumer platform NAME now uses CREDENTIAL (a name from
'dzctl credential list'). The first acknowledgement registers the consumer for
the integration. When every registered consumer is on the active credential, a
rotation's retiring credential is removed at once instead of at the end of its
overlap; a consumer still on the retiring one is announced (webhook event
credential.consumer_stale) before its removal.

Needs a key with the consumer, operator or admin role.`,
		Example: `  dzctl credential ack organizations/contoso/tenants/fabrikam/integrations/0190... \
    --consumer siem-eu --credential organizations/contoso/tenants/fabrikam/integrations/0190.../credentials/0191...`,
		Args: exactArgs("INTEGRATION"),
	}
	cmd.Flags().StringVar(&consumer, "consumer", "", "the platform's name: lowercase letters, digits and '-' (required)")
	cmd.Flags().StringVar(&credential, "credential", "", "the credential's name (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if err := requireFlags(cmd, "consumer", "credential"); err != nil {
			return err
		}
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		conn, err := inv.clientConn()
		if err != nil {
			return err
		}
		resp, err := dzconnectv1.NewTokenServiceClient(conn).AcknowledgeCredential(ctx, &dzconnectv1.AcknowledgeCredentialRequest{
			Integration: name, Consumer: consumer, Credential: credential})
		if err != nil {
			return err
		}
		c := resp.GetConsumer()
		forward := "no"
		if resp.GetRetirementBroughtForward() {
			forward = "yes: the retiring credential is being removed now"
		}
		return inv.printer().resource(resp, []field{{"consumer", c.GetConsumer()}, {"credential", c.GetCredential()},
			{"acknowledged", timeString(c.GetAcknowledgeTime())}, {"registered", timeString(c.GetCreateTime())},
			{"retirement brought forward", forward}})
	})
	return cmd
}
