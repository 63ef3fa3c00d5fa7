package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) orgSetProvisioner() *cobra.Command {
	var clientID, secretFile string
	cmd := &cobra.Command{
		Use:   "set-provisioner ORG --client-id GUID --client-secret-file PATH|-",
		Short: "Register the organization's multi-tenant provisioner application (organization admin)",
		Long: `Register (or replace) the organization's multi-tenant "provisioner" application:
its client ID, and a client secret that is stored in Vault and never shown again.
Customer tenants then consent it through 'dzctl tenant consent-link'.
The secret is read from --client-secret-file (or standard input with -), never
from the command line.`,
		Example: `  dzctl org set-provisioner contoso --client-id 11111111-2222-3333-4444-555555555555 \
      --client-secret-file - < provisioner-secret.txt`,
		Args: exactArgs("ORG"),
	}
	cmd.Flags().StringVar(&clientID, "client-id", "", "the provisioner application's client ID, a GUID (required)")
	cmd.Flags().StringVar(&secretFile, "client-secret-file", "", "file holding its client secret value, or - for standard input (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name, err := orgName("organization", args[0])
		if err != nil {
			return err
		}
		if err := requireFlags(cmd, "client-id", "client-secret-file"); err != nil {
			return err
		}
		secret, err := inv.readSecret("--client-secret-file", secretFile)
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.orgs.SetOrganizationProvisioner(ctx, &dzconnectv1.SetOrganizationProvisionerRequest{
			Name: name, ClientId: clientID, ClientSecret: secret})
		if err != nil {
			return err
		}
		return inv.printOrg(resp.GetOrganization())
	})
	return cmd
}

func (inv *invocation) tenantConsentLink() *cobra.Command {
	var redirectURI string
	cmd := &cobra.Command{
		Use:   "consent-link TENANT --redirect-uri URI",
		Short: "Get the admin-consent link of the organization's provisioner for a tenant",
		Long: `Get the link a tenant administrator opens to consent the organization's provisioner
application. The link works once and for an hour. Microsoft then redirects the
administrator to --redirect-uri (https, or http to localhost; it must be registered
on the provisioner application) with the result, which 'dzctl tenant complete-consent'
records.`,
		Example: `  dzctl tenant consent-link organizations/contoso/tenants/fabrikam --redirect-uri https://mssp.example.com/consent`,
		Args:    exactArgs("TENANT"),
	}
	cmd.Flags().StringVar(&redirectURI, "redirect-uri", "", "where Microsoft sends the administrator back (required)")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name, err := tenantName("tenant", args[0])
		if err != nil {
			return err
		}
		if err := requireFlags(cmd, "redirect-uri"); err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.tenants.GetAdminConsentLink(ctx, &dzconnectv1.GetAdminConsentLinkRequest{Name: name, RedirectUri: redirectURI})
		if err != nil {
			return err
		}
		return inv.printer().resource(resp, []field{
			{"URL", resp.GetUrl()},
			{"Expires", timeString(resp.GetExpireTime())},
		})
	})
	return cmd
}

func (inv *invocation) tenantCompleteConsent() *cobra.Command {
	var org, redirectURL string
	var req dzconnectv1.CompleteAdminConsentRequest
	cmd := &cobra.Command{
		Use:   "complete-consent --org ORG (--redirect-url URL | --redirect-uri URI --state STATE --admin-consent True --tenant GUID [--scope S] [--error CODE --error-description TEXT])",
		Short: "Record the admin-consent redirect Microsoft sent back",
		Long: `Record the result of an admin-consent link: paste the whole URL Microsoft redirected
the administrator to (--redirect-url), or give its query parameters one by one
with the redirect URI it arrived at (--redirect-uri). The redirect URI must be the
one the link was issued with. The tenant is found by the link's state, never by
the returned tenant, which must match it. A refused consent, or one from another tenant, fails (exit code 1) and
spends the state: get a new link to try again.`,
		Example: `  dzctl tenant complete-consent --org contoso \
      --redirect-url 'https://mssp.example.com/consent?admin_consent=True&tenant=0b6f...&state=...'`,
		Args: noArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	fl.StringVar(&redirectURL, "redirect-url", "", "the full URL Microsoft redirected to (its query holds the other parameters)")
	fl.StringVar(&req.State, "state", "", "the state parameter of the redirect")
	fl.StringVar(&req.AdminConsent, "admin-consent", "", "the admin_consent parameter (True on success)")
	fl.StringVar(&req.Tenant, "tenant", "", "the tenant parameter")
	fl.StringVar(&req.Error, "error", "", "the error parameter, when consent failed")
	fl.StringVar(&req.ErrorDescription, "error-description", "", "the error_description parameter")
	fl.StringVar(&req.Scope, "scope", "", "the scope parameter")
	fl.StringVar(&req.RedirectUri, "redirect-uri", "", "the redirect URI the redirect arrived at (the link's)")
	for _, f := range []string{"state", "admin-consent", "tenant", "error", "error-description", "scope", "redirect-uri"} {
		cmd.MarkFlagsMutuallyExclusive("redirect-url", f)
	}
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		switch {
		case cmd.Flags().Changed("redirect-url"):
			u, err := url.Parse(redirectURL)
			if err != nil || u.RawQuery == "" {
				return usageErrorf("invalid --redirect-url: want the whole URL Microsoft redirected to, with its query (quote it in the shell)")
			}
			q := u.Query()
			req.State, req.AdminConsent, req.Tenant = q.Get("state"), q.Get("admin_consent"), q.Get("tenant")
			req.Error, req.ErrorDescription, req.Scope = q.Get("error"), q.Get("error_description"), q.Get("scope")
			// The URL as it arrived; dzconnect ignores Microsoft's parameters
			// when comparing it with the link's redirect URI.
			req.RedirectUri = redirectURL
			if req.State == "" {
				return usageErrorf("invalid --redirect-url: its query has no state parameter")
			}
		case !cmd.Flags().Changed("state") || !cmd.Flags().Changed("redirect-uri"):
			return usageErrorf("give --redirect-url, or --redirect-uri and --state with --admin-consent and --tenant (or --error)")
		}
		req.Parent = parent
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.tenants.CompleteAdminConsent(ctx, &req)
		if err != nil {
			return err
		}
		if p := resp.GetProvisionerPermissions(); len(p.GetMissing()) > 0 || p.GetError() != "" {
			// On stderr: the consent is recorded; this is what still stands
			// in the way of provisioning.
			msg := "provisioner permissions missing in the tenant: " + strings.Join(p.GetMissing(), ", ")
			if p.GetError() != "" {
				msg = "provisioner permissions not checked: " + p.GetError()
			}
			if p.GetRemedy() != "" {
				msg += "\nremedy: " + p.GetRemedy()
			}
			_, _ = fmt.Fprintln(inv.app.stderr, msg)
		}
		return inv.printTenant(resp.GetTenant())
	})
	return cmd
}
