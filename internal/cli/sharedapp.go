package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

// sharedAppCommand groups shared mode: the organization's own multi-tenant
// integration application per kind (docs/shared-mode.md).
func (inv *invocation) sharedAppCommand() *cobra.Command {
	cmd := group("shared-app", "Shared mode: the organization's own multi-tenant integration application per kind", "shared-apps")
	cmd.AddCommand(inv.sharedAppManifest(), inv.sharedAppCreate(), inv.sharedAppGet(), inv.sharedAppList(),
		inv.sharedAppUpdateSecret(), inv.sharedAppDelete(), inv.sharedAppConsentLink(), inv.sharedAppIntegrate())
	return cmd
}

// sharedAppName is organizations/ORG/sharedApplications/KIND.
func sharedAppName(org, kind string) (string, error) {
	o, err := orgName("--org", org)
	if err != nil {
		return "", err
	}
	k, err := parseKind("--kind", kind)
	if err != nil {
		return "", err
	}
	return o + "/sharedApplications/" + short(k), nil
}

func (inv *invocation) sharedAppClient() (dzconnectv1.SharedApplicationServiceClient, error) {
	conn, err := inv.clientConn()
	if err != nil {
		return nil, err
	}
	return dzconnectv1.NewSharedApplicationServiceClient(conn), nil
}

func (inv *invocation) printSharedApp(a *dzconnectv1.SharedApplication) error {
	return inv.printer().resource(a, []field{
		{"Name", a.GetName()},
		{"Kind", short(a.GetKind())},
		{"Client ID", a.GetClientId()},
		{"Display name", a.GetDisplayName()},
		{"Features", featuresString(a.GetFeatures())},
		{"Secret version", strconv.FormatInt(a.GetSecretVersion(), 10)},
		{"Secret expires", timeString(a.GetSecretExpireTime())},
		{"Tenant steps", strings.Join(a.GetTenantSteps(), "; ")},
		{"Created", timeString(a.GetCreateTime())},
		{"Updated", timeString(a.GetUpdateTime())},
		{"Etag", a.GetEtag()},
		{"Manifest", "\n" + a.GetManifestJson()},
	})
}

// manifestFragment is the part of an application manifest the shared
// application needs: multi-tenant, and the catalog's application
// permissions as requiredResourceAccess (the same shape the server puts in
// SharedApplication.manifest_json).
type manifestFragment struct {
	SignInAudience         string           `json:"signInAudience"`
	RequiredResourceAccess []resourceAccess `json:"requiredResourceAccess"`
}

type resourceAccess struct {
	ResourceAppID  string       `json:"resourceAppId"`
	ResourceAccess []accessItem `json:"resourceAccess"`
}

type accessItem struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func (inv *invocation) sharedAppManifest() *cobra.Command {
	var kind string
	var features []string
	cmd := &cobra.Command{
		Use:   "manifest --kind defender|sentinel [--feature F]",
		Short: "Print the manifest fragment to configure on the shared application before registering it",
		Long: `Print the JSON to merge into the shared application's manifest in the organization's
home tenant (Entra admin center, App registrations, Manifest): signInAudience
AzureADMultipleOrgs and requiredResourceAccess holding exactly the permission
catalog's application permissions for the kind (and --feature), which the tenants'
admin consent then grants. Built from the server's catalog (GetPermissionCatalog).`,
		Example: `  dzctl shared-app manifest --kind defender > manifest-fragment.json`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&kind, "kind", "", "defender or sentinel (required)")
	cmd.Flags().StringSliceVar(&features, "feature", nil, "Defender features the application covers: cloud_apps, live_response, exchange")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "kind"); err != nil {
			return err
		}
		k, err := parseKind("--kind", kind)
		if err != nil {
			return err
		}
		fs, err := parseFeatures("--feature", features)
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.catalog.GetPermissionCatalog(ctx, &dzconnectv1.GetPermissionCatalogRequest{Kind: k, Features: fs})
		if err != nil {
			return err
		}
		m := manifestFragment{SignInAudience: "AzureADMultipleOrgs", RequiredResourceAccess: []resourceAccess{}}
		idx := map[string]int{}
		for _, p := range resp.GetPermissions() {
			// Without --feature the catalog answers every feature: keep the base.
			if p.GetType() != dzconnectv1.PermissionType_PERMISSION_TYPE_APPLICATION ||
				(len(fs) == 0 && p.GetFeature() != dzconnectv1.Feature_FEATURE_UNSPECIFIED) {
				continue
			}
			i, ok := idx[p.GetResourceAppId()]
			if !ok {
				i = len(m.RequiredResourceAccess)
				idx[p.GetResourceAppId()] = i
				m.RequiredResourceAccess = append(m.RequiredResourceAccess, resourceAccess{ResourceAppID: p.GetResourceAppId()})
			}
			m.RequiredResourceAccess[i].ResourceAccess = append(m.RequiredResourceAccess[i].ResourceAccess, accessItem{ID: p.GetId(), Type: "Role"})
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(inv.app.stdout, string(b))
		return err
	})
	return cmd
}

func (inv *invocation) sharedAppCreate() *cobra.Command {
	var org, kind, clientID, displayName, secretFile, secretExpire, refused string
	var features []string
	cmd := &cobra.Command{
		Use:   "create --org ORG --kind defender|sentinel --client-id GUID --client-secret-file PATH|- [flags]",
		Short: "Register the organization's shared application of a kind (organization admin)",
		Long: `Register the multi-tenant application the organization made in its home tenant for
this kind (configure it with 'dzctl shared-app manifest' first): its client ID, and
a client secret that is stored in Vault and never shown again. Tenants then consent
it with 'dzctl shared-app consent-link', and 'dzctl shared-app create-integration'
makes integrations that use it.`,
		Example: `  dzctl shared-app create --org contoso --kind defender --client-id 11111111-2222-3333-4444-555555555555 \
      --client-secret-file - < shared-secret.txt`,
		Args: noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&org, "org", "", "organization (required)")
	fl.StringVar(&kind, "kind", "", "defender or sentinel (required)")
	fl.StringVar(&clientID, "client-id", "", "the application's client ID, a GUID (required)")
	fl.StringVar(&displayName, "display-name", "", "human-readable name")
	fl.StringSliceVar(&features, "feature", nil, "Defender features its permissions cover: cloud_apps, live_response, exchange")
	fl.StringVar(&secretFile, "client-secret-file", "", "file holding its client secret value, or - for standard input (required)")
	fl.StringVar(&secretExpire, "secret-expire-time", "", "RFC 3339 time the client secret expires")
	fl.StringVar(&refused, "client-secret", "", "")
	_ = fl.MarkHidden("client-secret")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := refuseSecretFlag(cmd); err != nil {
			return err
		}
		if err := requireFlags(cmd, "org", "kind", "client-id", "client-secret-file"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		a := &dzconnectv1.SharedApplication{ClientId: clientID, DisplayName: displayName}
		if a.Kind, err = parseKind("--kind", kind); err != nil {
			return err
		}
		if a.Features, err = parseFeatures("--feature", features); err != nil {
			return err
		}
		if cmd.Flags().Changed("secret-expire-time") {
			if a.SecretExpireTime, err = parseTime("--secret-expire-time", secretExpire); err != nil {
				return err
			}
		}
		secret, err := inv.readSecret("--client-secret-file", secretFile)
		if err != nil {
			return err
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		resp, err := c.CreateSharedApplication(ctx, &dzconnectv1.CreateSharedApplicationRequest{Parent: parent,
			SharedApplication: a, ClientSecret: secret, RequestId: inv.requestID})
		if err != nil {
			return err
		}
		return inv.printSharedApp(resp.GetSharedApplication())
	})
	return cmd
}

func (inv *invocation) sharedAppGet() *cobra.Command {
	var org, kind string
	cmd := &cobra.Command{
		Use:     "get --org ORG --kind defender|sentinel",
		Short:   "Show a shared application, with the manifest fragment it needs",
		Example: `  dzctl shared-app get --org contoso --kind defender`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization (required)")
	cmd.Flags().StringVar(&kind, "kind", "", "defender or sentinel (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org", "kind"); err != nil {
			return err
		}
		name, err := sharedAppName(org, kind)
		if err != nil {
			return err
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		resp, err := c.GetSharedApplication(ctx, &dzconnectv1.GetSharedApplicationRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printSharedApp(resp.GetSharedApplication())
	})
	return cmd
}

func (inv *invocation) sharedAppList() *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List the organization's shared applications",
		Example: `  dzctl shared-app list --org contoso`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		resp, err := c.ListSharedApplications(ctx, &dzconnectv1.ListSharedApplicationsRequest{Parent: parent})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(resp.GetSharedApplications()))
		for _, a := range resp.GetSharedApplications() {
			rows = append(rows, []string{a.GetName(), a.GetClientId(), featuresString(a.GetFeatures()),
				strconv.FormatInt(a.GetSecretVersion(), 10), timeString(a.GetSecretExpireTime())})
		}
		return inv.printer().table(resp, "shared applications", []string{"NAME", "CLIENT ID", "FEATURES", "SECRET VERSION", "SECRET EXPIRES"}, rows)
	})
	return cmd
}

func (inv *invocation) sharedAppUpdateSecret() *cobra.Command {
	var org, kind, etag, secretFile, secretExpire, refused string
	cmd := &cobra.Command{
		Use:   "update-secret --org ORG --kind defender|sentinel --client-secret-file PATH|- [--secret-expire-time T] [--etag E]",
		Short: "Replace the shared application's client secret (every integration using it switches at once)",
		Long: `Store a new client secret of the shared application (made on the same application in
the home tenant). Every integration that uses the application uses the new secret
from its next token on. Remove the old secret in the home tenant afterwards.`,
		Example: `  dzctl shared-app update-secret --org contoso --kind defender --client-secret-file - < new-secret.txt`,
		Args:    noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&org, "org", "", "organization (required)")
	fl.StringVar(&kind, "kind", "", "defender or sentinel (required)")
	fl.StringVar(&etag, "etag", "", "update only if the shared application still has this etag")
	fl.StringVar(&secretFile, "client-secret-file", "", "file holding the new client secret value, or - for standard input (required)")
	fl.StringVar(&secretExpire, "secret-expire-time", "", "RFC 3339 time the new client secret expires")
	fl.StringVar(&refused, "client-secret", "", "")
	_ = fl.MarkHidden("client-secret")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := refuseSecretFlag(cmd); err != nil {
			return err
		}
		if err := requireFlags(cmd, "org", "kind", "client-secret-file"); err != nil {
			return err
		}
		name, err := sharedAppName(org, kind)
		if err != nil {
			return err
		}
		a := &dzconnectv1.SharedApplication{Name: name, Etag: etag}
		if cmd.Flags().Changed("secret-expire-time") {
			if a.SecretExpireTime, err = parseTime("--secret-expire-time", secretExpire); err != nil {
				return err
			}
		}
		secret, err := inv.readSecret("--client-secret-file", secretFile)
		if err != nil {
			return err
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		resp, err := c.UpdateSharedApplication(ctx, &dzconnectv1.UpdateSharedApplicationRequest{SharedApplication: a, ClientSecret: secret})
		if err != nil {
			return err
		}
		return inv.printSharedApp(resp.GetSharedApplication())
	})
	return cmd
}

func (inv *invocation) sharedAppDelete() *cobra.Command {
	var org, kind, etag string
	cmd := &cobra.Command{
		Use:     "delete --org ORG --kind defender|sentinel [--etag E]",
		Short:   "Delete a shared application no integration uses (its secret is destroyed)",
		Example: `  dzctl shared-app delete --org contoso --kind defender`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization (required)")
	cmd.Flags().StringVar(&kind, "kind", "", "defender or sentinel (required)")
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the shared application still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org", "kind"); err != nil {
			return err
		}
		name, err := sharedAppName(org, kind)
		if err != nil {
			return err
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		if _, err := c.DeleteSharedApplication(ctx, &dzconnectv1.DeleteSharedApplicationRequest{Name: name, Etag: etag}); err != nil {
			return err
		}
		fmt.Fprintf(inv.app.stderr, "Deleted %s.\n", name)
		return nil
	})
	return cmd
}

func (inv *invocation) sharedAppConsentLink() *cobra.Command {
	var kind, tenant, redirectURI string
	cmd := &cobra.Command{
		Use:   "consent-link --tenant TENANT --kind defender|sentinel --redirect-uri URI",
		Short: "Get the admin-consent link of the shared application for a tenant",
		Long: `Get the link a tenant administrator opens to consent the organization's shared
application of the kind (it grants exactly the permissions its manifest lists).
The link works once and for an hour; record the redirect with
'dzctl tenant complete-consent'.`,
		Example: `  dzctl shared-app consent-link --tenant organizations/contoso/tenants/fabrikam --kind defender \
      --redirect-uri https://mssp.example.com/consent`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant, organizations/ORG/tenants/TENANT (required)")
	cmd.Flags().StringVar(&kind, "kind", "", "defender or sentinel (required)")
	cmd.Flags().StringVar(&redirectURI, "redirect-uri", "", "where Microsoft sends the administrator back (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "tenant", "kind", "redirect-uri"); err != nil {
			return err
		}
		t, err := tenantName("--tenant", tenant)
		if err != nil {
			return err
		}
		name, err := sharedAppName(strings.Join(strings.Split(t, "/")[:2], "/"), kind)
		if err != nil {
			return err
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		resp, err := c.GetSharedApplicationConsentLink(ctx, &dzconnectv1.GetSharedApplicationConsentLinkRequest{
			Name: name, Tenant: t, RedirectUri: redirectURI})
		if err != nil {
			return err
		}
		return inv.printer().resource(resp, []field{{"URL", resp.GetUrl()}, {"Expires", timeString(resp.GetExpireTime())}})
	})
	return cmd
}

func (inv *invocation) sharedAppIntegrate() *cobra.Command {
	var tenant, kind, displayName, redirectURI string
	var f integrationFlags
	cmd := &cobra.Command{
		Use:   "create-integration --tenant TENANT --kind defender|sentinel [--display-name N] [Sentinel workspace flags]",
		Short: "Create an integration that uses the shared application in a tenant that consented it",
		Long: `Create an integration in management mode shared: it uses the organization's shared
application of the kind with the tenant's ID; nothing is created in the tenant. When
the tenant has not consented the application, the error carries the admin-consent
link (a recorded single-use one with --consent-redirect-uri).`,
		Example: `  dzctl shared-app create-integration --tenant organizations/contoso/tenants/fabrikam --kind defender`,
		Args:    noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&tenant, "tenant", "", "tenant, organizations/ORG/tenants/TENANT (required)")
	fl.StringVar(&kind, "kind", "", "defender or sentinel (required)")
	fl.StringVar(&displayName, "display-name", "", "human-readable name (default Dropzone AI)")
	fl.StringVar(&redirectURI, "consent-redirect-uri", "", "when not consented: issue a recorded link that redirects here")
	fl.StringVar(&f.subscriptionID, "subscription-id", "", "Sentinel: Azure subscription ID")
	fl.StringVar(&f.resourceGroup, "resource-group", "", "Sentinel: resource group of the workspace")
	fl.StringVar(&f.workspaceName, "workspace-name", "", "Sentinel: Log Analytics workspace name")
	fl.StringVar(&f.workspaceID, "workspace-id", "", "Sentinel: Log Analytics workspace ID (customerId)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "tenant", "kind"); err != nil {
			return err
		}
		parent, err := tenantName("--tenant", tenant)
		if err != nil {
			return err
		}
		in := &dzconnectv1.Integration{DisplayName: displayName}
		if in.Kind, err = parseKind("--kind", kind); err != nil {
			return err
		}
		if f.anySentinel(cmd) {
			in.Sentinel = f.sentinel()
		}
		c, err := inv.sharedAppClient()
		if err != nil {
			return err
		}
		resp, err := c.CreateSharedIntegration(ctx, &dzconnectv1.CreateSharedIntegrationRequest{Parent: parent, Integration: in,
			RequestId: inv.requestID, ConsentRedirectUri: redirectURI})
		if err != nil {
			return err
		}
		return inv.printIntegration(resp.GetIntegration())
	})
	return cmd
}
