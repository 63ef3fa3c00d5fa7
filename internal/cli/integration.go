package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) integrationCommand() *cobra.Command {
	cmd := group("integration", "Manage Microsoft Defender and Sentinel integrations of tenants", "integrations", "int")
	cmd.AddCommand(inv.integrationCreate(), inv.integrationGet(), inv.integrationList(), inv.integrationUpdate(), inv.integrationDelete(),
		inv.integrationProvision(), inv.integrationDeprovision(), inv.checkCommand(), inv.integrationChecks())
	return cmd
}

// integrationFlags are the flags create and update share.
type integrationFlags struct {
	displayName    string
	features       []string
	secretFile     string
	secretExpire   string
	secretKeyID    string
	secretHint     string
	subscriptionID string
	resourceGroup  string
	workspaceName  string
	workspaceID    string
	refusedSecret  string
}

var sentinelFlags = []string{"subscription-id", "resource-group", "workspace-name", "workspace-id"}

func (f *integrationFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.displayName, "display-name", "", "human-readable name")
	fl.StringSliceVar(&f.features, "feature", nil, "Defender features: cloud_apps, live_response, exchange (comma-separated or repeated)")
	fl.StringVar(&f.secretFile, "client-secret-file", "", "file holding the client secret value, or - for standard input")
	fl.StringVar(&f.secretExpire, "secret-expire-time", "", "RFC 3339 time the client secret expires in Entra")
	fl.StringVar(&f.secretKeyID, "secret-key-id", "", "Entra key ID of the client secret (its \"Secret ID\")")
	fl.StringVar(&f.secretHint, "secret-hint", "", "first characters of the secret as Entra shows them")
	fl.StringVar(&f.subscriptionID, "subscription-id", "", "Sentinel: Azure subscription ID")
	fl.StringVar(&f.resourceGroup, "resource-group", "", "Sentinel: resource group of the workspace")
	fl.StringVar(&f.workspaceName, "workspace-name", "", "Sentinel: Log Analytics workspace name")
	fl.StringVar(&f.workspaceID, "workspace-id", "", "Sentinel: Log Analytics workspace ID (customerId)")
	// A secret given as a flag value would land in shell history and process
	// listings: refuse it with a pointer to the safe way.
	fl.StringVar(&f.refusedSecret, "client-secret", "", "")
	_ = fl.MarkHidden("client-secret")
}

// refuseSecretFlag rejects --client-secret without repeating its value.
func refuseSecretFlag(cmd *cobra.Command) error {
	if cmd.Flags().Changed("client-secret") {
		return usageErrorf("--client-secret is not accepted, so the secret stays out of shell history: use --client-secret-file PATH, or --client-secret-file - to read standard input")
	}
	return nil
}

func (f *integrationFlags) anySentinel(cmd *cobra.Command) bool {
	for _, n := range sentinelFlags {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

func (f *integrationFlags) sentinel() *dzconnectv1.SentinelWorkspace {
	return &dzconnectv1.SentinelWorkspace{
		SubscriptionId: f.subscriptionID,
		ResourceGroup:  f.resourceGroup,
		WorkspaceName:  f.workspaceName,
		WorkspaceId:    f.workspaceID,
	}
}

func (inv *invocation) integrationCreate() *cobra.Command {
	var tenant, kind, clientID string
	var f integrationFlags
	cmd := &cobra.Command{
		Use:   "create --tenant TENANT --kind defender|sentinel --client-id GUID --client-secret-file PATH|- [flags]",
		Short: "Create a customer-managed integration from an Entra app's client ID and secret",
		Long: `Create a customer-managed integration: the customer admin registered the Entra
application by hand (see the setup guide) and gave you its client ID and a client
secret. The secret is read from --client-secret-file (or standard input with -),
never from a flag value, and is stored in Vault; it is never printed.`,
		Example: `  # Defender, secret piped from a password manager
  op read op://mssp/fabrikam/secret | dzctl integration create \
      --tenant organizations/contoso/tenants/fabrikam --kind defender \
      --client-id 11111111-2222-3333-4444-555555555555 --client-secret-file - \
      --feature cloud_apps,live_response --secret-expire-time 2027-11-26T00:00:00Z

  # Sentinel, secret in a file
  dzctl integration create --tenant organizations/contoso/tenants/fabrikam --kind sentinel \
      --client-id 11111111-2222-3333-4444-555555555555 --client-secret-file ./secret.txt \
      --subscription-id 9a8b7c6d-0000-1111-2222-333344445555 --resource-group rg-sentinel \
      --workspace-name fabrikam-law --workspace-id 66666666-7777-8888-9999-000000000000`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant, organizations/ORG/tenants/TENANT (required)")
	cmd.Flags().StringVar(&kind, "kind", "", "defender (microsoft-365-defender) or sentinel (microsoft-sentinel) (required)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "Entra application (client) ID, a GUID (required)")
	f.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := refuseSecretFlag(cmd); err != nil {
			return err
		}
		if err := requireFlags(cmd, "tenant", "kind", "client-id", "client-secret-file"); err != nil {
			return err
		}
		parent, err := tenantName("--tenant", tenant)
		if err != nil {
			return err
		}
		in := &dzconnectv1.Integration{
			DisplayName: f.displayName,
			Application: &dzconnectv1.EntraApplication{ClientId: clientID},
		}
		if in.Kind, err = parseKind("--kind", kind); err != nil {
			return err
		}
		if in.Features, err = parseFeatures("--feature", f.features); err != nil {
			return err
		}
		if f.anySentinel(cmd) {
			in.Sentinel = f.sentinel()
		}
		if cmd.Flags().Changed("secret-expire-time") || f.secretKeyID != "" || f.secretHint != "" {
			in.Credential = &dzconnectv1.Credential{KeyId: f.secretKeyID, Hint: f.secretHint}
			if cmd.Flags().Changed("secret-expire-time") {
				if in.Credential.ExpireTime, err = parseTime("--secret-expire-time", f.secretExpire); err != nil {
					return err
				}
			}
		}
		secret, err := inv.readSecret("--client-secret-file", f.secretFile)
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.integrations.CreateIntegration(ctx, &dzconnectv1.CreateIntegrationRequest{
			Parent:       parent,
			Integration:  in,
			ClientSecret: secret,
			RequestId:    inv.requestID,
		})
		if err != nil {
			return err
		}
		return inv.printIntegration(resp.GetIntegration())
	})
	return cmd
}

func (inv *invocation) integrationGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get INTEGRATION",
		Short:   "Show an integration, its state and credential metadata",
		Example: `  dzctl integration get organizations/contoso/tenants/fabrikam/integrations/defender`,
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
		return inv.printIntegration(resp.GetIntegration())
	})
	return cmd
}

func (inv *invocation) integrationList() *cobra.Command {
	var tenant, org, kind, state, expireBefore string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:   "list (--tenant TENANT | --org ORG) [--kind KIND] [--state STATE] [--expire-before TIME|DURATION]",
		Short: "List integrations of one tenant, or of every tenant of an organization",
		Example: `  dzctl integration list --tenant organizations/contoso/tenants/fabrikam
  dzctl integration list --org contoso --state broken
  dzctl integration list --org contoso --kind sentinel -o json
  # Secrets expiring in the next 30 days (or already expired)
  dzctl integration list --org contoso --expire-before 30d
  dzctl integration list --org contoso --expire-before 2027-01-01T00:00:00Z`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant, organizations/ORG/tenants/TENANT")
	cmd.Flags().StringVar(&org, "org", "", "organization: list the integrations of all its tenants")
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind: defender or sentinel")
	cmd.Flags().StringVar(&state, "state", "", "only this state: unverified, healthy, propagating, degraded, broken, blocked-by-policy")
	cmd.Flags().StringVar(&expireBefore, "expire-before", "", "only integrations whose client secret expires before this time: RFC 3339, or a duration from now such as 720h or 30d")
	cmd.MarkFlagsMutuallyExclusive("tenant", "org")
	cmd.MarkFlagsOneRequired("tenant", "org")
	pages.add(cmd)
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		req := &dzconnectv1.ListIntegrationsRequest{}
		var err error
		if cmd.Flags().Changed("tenant") {
			if req.Parent, err = tenantName("--tenant", tenant); err != nil {
				return err
			}
		} else {
			o, err := orgName("--org", org)
			if err != nil {
				return err
			}
			req.Parent = o + "/tenants/-"
		}
		if cmd.Flags().Changed("kind") {
			if req.Kind, err = parseKind("--kind", kind); err != nil {
				return err
			}
		}
		if cmd.Flags().Changed("state") {
			if req.State, err = parseState("--state", state); err != nil {
				return err
			}
		}
		if cmd.Flags().Changed("expire-before") {
			if req.ExpireBefore, err = parseTimeOrDuration("--expire-before", expireBefore, time.Now()); err != nil {
				return err
			}
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		items, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.Integration, string, error) {
			r := &dzconnectv1.ListIntegrationsRequest{
				Parent: req.Parent, Kind: req.Kind, State: req.State, ExpireBefore: req.ExpireBefore, PageSize: size, PageToken: token,
			}
			resp, err := c.integrations.ListIntegrations(ctx, r)
			return resp.GetIntegrations(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(items))
		for _, i := range items {
			rows = append(rows, []string{i.GetName(), i.GetDisplayName(), short(i.GetKind()), short(i.GetState()),
				i.GetApplication().GetClientId(), timeString(i.GetCredential().GetExpireTime()), timeString(i.GetLastCheckTime())})
		}
		return inv.printer().table(&dzconnectv1.ListIntegrationsResponse{Integrations: items}, "integrations",
			[]string{"NAME", "DISPLAY NAME", "KIND", "STATE", "CLIENT ID", "SECRET EXPIRES", "LAST CHECK"}, rows)
	})
	return cmd
}

func (inv *invocation) integrationUpdate() *cobra.Command {
	var etag string
	var f integrationFlags
	cmd := &cobra.Command{
		Use:   "update INTEGRATION [flags]",
		Short: "Change an integration, or replace its client secret",
		Long: `Change an integration. Only the fields whose flags are given are updated (the
update mask is built from them). --feature replaces the whole feature list
(--feature '' removes all). The four Sentinel workspace flags replace the
workspace together, so give all four. --client-secret-file stores a new secret
in Vault and tries it (a token and every probe); it replaces the current one
only if it works, otherwise the update fails naming client_secret and nothing
changes. The replaced secret is destroyed in Vault; delete it in Entra.`,
		Example: `  # Rotate a secret by hand
  dzctl integration update organizations/contoso/tenants/fabrikam/integrations/defender \
      --client-secret-file - --secret-expire-time 2028-01-31T00:00:00Z < new-secret.txt

  dzctl integration update organizations/contoso/tenants/fabrikam/integrations/defender \
      --feature cloud_apps,exchange --display-name "Fabrikam Defender"`,
		Args: exactArgs("INTEGRATION"),
	}
	f.add(cmd)
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the integration still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		if err := refuseSecretFlag(cmd); err != nil {
			return err
		}
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		in := &dzconnectv1.Integration{Name: name, Etag: etag}
		mask := &fieldmaskpb.FieldMask{}
		changed := cmd.Flags().Changed
		if changed("display-name") {
			in.DisplayName = f.displayName
			mask.Paths = append(mask.Paths, "display_name")
		}
		if changed("feature") {
			if in.Features, err = parseFeatures("--feature", f.features); err != nil {
				return err
			}
			mask.Paths = append(mask.Paths, "features")
		}
		if f.anySentinel(cmd) {
			var missing []string
			for _, n := range sentinelFlags {
				if !changed(n) {
					missing = append(missing, "--"+n)
				}
			}
			if len(missing) > 0 {
				return usageErrorf("the Sentinel workspace is replaced as a whole: also give %s", strings.Join(missing, ", "))
			}
			in.Sentinel = f.sentinel()
			mask.Paths = append(mask.Paths, "sentinel")
		}
		cred := &dzconnectv1.Credential{}
		if changed("secret-expire-time") {
			if cred.ExpireTime, err = parseTime("--secret-expire-time", f.secretExpire); err != nil {
				return err
			}
			mask.Paths = append(mask.Paths, "credential.expire_time")
		}
		if changed("secret-key-id") {
			cred.KeyId = f.secretKeyID
			mask.Paths = append(mask.Paths, "credential.key_id")
		}
		if changed("secret-hint") {
			cred.Hint = f.secretHint
			mask.Paths = append(mask.Paths, "credential.hint")
		}
		if changed("secret-expire-time") || changed("secret-key-id") || changed("secret-hint") {
			in.Credential = cred
		}
		req := &dzconnectv1.UpdateIntegrationRequest{Integration: in, UpdateMask: mask}
		if changed("client-secret-file") {
			if req.ClientSecret, err = inv.readSecret("--client-secret-file", f.secretFile); err != nil {
				return err
			}
		}
		if len(mask.Paths) == 0 && req.ClientSecret == "" {
			return usageErrorf("nothing to update: give at least one field flag or --client-secret-file")
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.integrations.UpdateIntegration(ctx, req)
		if err != nil {
			return err
		}
		if resp.GetNextStep() != "" {
			fmt.Fprintln(inv.app.stderr, "Next: "+resp.GetNextStep())
		}
		return inv.printIntegration(resp.GetIntegration())
	})
	return cmd
}

func (inv *invocation) integrationDelete() *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "delete INTEGRATION [--etag ETAG]",
		Short: "Delete an integration and destroy its secret in Vault",
		Args:  exactArgs("INTEGRATION"),
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the integration still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := integrationName("integration", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		if _, err := c.integrations.DeleteIntegration(ctx, &dzconnectv1.DeleteIntegrationRequest{Name: name, Etag: etag}); err != nil {
			return err
		}
		return inv.printer().deleted(name)
	})
	return cmd
}

func (inv *invocation) printIntegration(i *dzconnectv1.Integration) error {
	app, cred := i.GetApplication(), i.GetCredential()
	fields := []field{
		{"Name", i.GetName()},
		{"Display name", i.GetDisplayName()},
		{"Kind", short(i.GetKind())},
		{"Features", featuresString(i.GetFeatures())},
		{"Management mode", short(i.GetManagementMode())},
		{"State", short(i.GetState())},
		{"Last check", timeString(i.GetLastCheckTime())},
		{"Client ID", app.GetClientId()},
		{"Application object ID", app.GetApplicationObjectId()},
		{"Service principal object ID", app.GetServicePrincipalObjectId()},
	}
	if s := i.GetSentinel(); s != nil {
		fields = append(fields,
			field{"Subscription ID", s.GetSubscriptionId()},
			field{"Resource group", s.GetResourceGroup()},
			field{"Workspace name", s.GetWorkspaceName()},
			field{"Workspace ID", s.GetWorkspaceId()},
		)
	}
	version := ""
	if cred.GetVersion() != 0 {
		version = strconv.FormatInt(cred.GetVersion(), 10)
	}
	fields = append(fields,
		field{"Secret key ID", cred.GetKeyId()},
		field{"Secret hint", cred.GetHint()},
		field{"Secret stored", timeString(cred.GetCreateTime())},
		field{"Secret expires", timeString(cred.GetExpireTime())},
		field{"Secret version", version},
	)
	for _, c := range i.GetCredentials() {
		fields = append(fields, field{"Credential", credentialString(c)})
	}
	fields = append(fields,
		field{"Created", timeString(i.GetCreateTime())},
		field{"Updated", timeString(i.GetUpdateTime())},
		field{"Etag", i.GetEtag()},
	)
	return inv.printer().resource(i, fields)
}

// credentialString is one credential on one line: ID, state, type, source,
// key ID and hint when known, expiry.
func credentialString(c *dzconnectv1.IntegrationCredential) string {
	name := c.GetName()
	out := name[strings.LastIndexByte(name, '/')+1:] + " " + short(c.GetState()) + " " + short(c.GetType()) + " (" + short(c.GetSource()) + ")"
	if c.GetKeyId() != "" {
		out += " key " + c.GetKeyId()
	}
	if c.GetHint() != "" {
		out += " hint " + c.GetHint()
	}
	if c.GetEndTime() != nil {
		out += " expires " + timeString(c.GetEndTime())
	}
	return out
}
