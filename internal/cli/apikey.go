package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	dzconnectv1 "github.com/dropzoneai/dzconnect/api/dzconnect/v1"
)

func (inv *invocation) apiKeyCommand() *cobra.Command {
	cmd := group("apikey", "Manage an organization's API keys (admin)", "apikeys", "api-key", "api-keys")
	cmd.AddCommand(inv.apiKeyCreate(), inv.apiKeyGet(), inv.apiKeyList(), inv.apiKeyUpdate(), inv.apiKeyDelete())
	return cmd
}

func (inv *invocation) apiKeyCreate() *cobra.Command {
	var org, displayName, role, expire string
	cmd := &cobra.Command{
		Use:   "create --org ORG --display-name NAME --role admin|operator|viewer|consumer [--expire-time TIME]",
		Short: "Create an API key; its secret is printed once",
		Long: `Create an API key. The secret is printed once, on standard output, and is
never shown again: store it now (for example in your secret manager).
With -o json the secret is the "secret" field of the response.`,
		Example: `  dzctl apikey create --org contoso --display-name onboarding-bot --role operator
  dzctl apikey create --org contoso --display-name ci --role viewer \
      --expire-time 2027-06-30T00:00:00Z -o json | jq -r .secret`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&org, "org", "", "organization, organizations/ORG or ORG (required)")
	cmd.Flags().StringVar(&displayName, "display-name", "", "human-readable name (required)")
	cmd.Flags().StringVar(&role, "role", "", "admin, operator, viewer or consumer (IssueAccessToken and AcknowledgeCredential only) (required)")
	cmd.Flags().StringVar(&expire, "expire-time", "", "RFC 3339 time after which the key stops working")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, _ []string) error {
		if err := requireFlags(cmd, "org", "display-name", "role"); err != nil {
			return err
		}
		parent, err := orgName("--org", org)
		if err != nil {
			return err
		}
		key := &dzconnectv1.ApiKey{DisplayName: displayName}
		if key.Role, err = parseRole("--role", role); err != nil {
			return err
		}
		if cmd.Flags().Changed("expire-time") {
			if key.ExpireTime, err = parseTime("--expire-time", expire); err != nil {
				return err
			}
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.apiKeys.CreateApiKey(ctx, &dzconnectv1.CreateApiKeyRequest{Parent: parent, ApiKey: key, RequestId: inv.requestID})
		if err != nil {
			return err
		}
		p := inv.printer()
		if p.json {
			err = p.protoJSON(resp)
		} else {
			var extra []field
			if resp.GetSecret() != "" {
				extra = append(extra, field{"Secret", resp.GetSecret()})
			}
			err = inv.printAPIKey(resp.GetApiKey(), extra...)
		}
		if err != nil {
			return err
		}
		if resp.GetSecret() == "" {
			fmt.Fprintln(inv.app.stderr, "Warning: no secret returned: this request ID was used before, and the secret is shown only to the first call.")
		} else {
			fmt.Fprintln(inv.app.stderr, "Warning: store the secret now: it is not shown again.")
		}
		return nil
	})
	return cmd
}

func (inv *invocation) apiKeyGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get KEY",
		Short:   "Show an API key's metadata",
		Example: `  dzctl apikey get organizations/contoso/apiKeys/k-123`,
		Args:    exactArgs("KEY"),
	}
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := apiKeyName("API key", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.apiKeys.GetApiKey(ctx, &dzconnectv1.GetApiKeyRequest{Name: name})
		if err != nil {
			return err
		}
		return inv.printAPIKey(resp.GetApiKey())
	})
	return cmd
}

func (inv *invocation) apiKeyList() *cobra.Command {
	var org string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List an organization's API keys, oldest first",
		Example: `  dzctl apikey list --org contoso`,
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
		keys, err := collect(ctx, pages, func(ctx context.Context, size int32, token string) ([]*dzconnectv1.ApiKey, string, error) {
			resp, err := c.apiKeys.ListApiKeys(ctx, &dzconnectv1.ListApiKeysRequest{Parent: parent, PageSize: size, PageToken: token})
			return resp.GetApiKeys(), resp.GetNextPageToken(), err
		})
		if err != nil {
			return err
		}
		rows := make([][]string, 0, len(keys))
		for _, k := range keys {
			rows = append(rows, []string{k.GetName(), k.GetDisplayName(), short(k.GetRole()), k.GetKeyPrefix(),
				timeString(k.GetExpireTime()), timeString(k.GetCreateTime())})
		}
		return inv.printer().table(&dzconnectv1.ListApiKeysResponse{ApiKeys: keys}, "API keys",
			[]string{"NAME", "DISPLAY NAME", "ROLE", "PREFIX", "EXPIRES", "CREATED"}, rows)
	})
	return cmd
}

func (inv *invocation) apiKeyUpdate() *cobra.Command {
	var displayName, etag string
	cmd := &cobra.Command{
		Use:   "update KEY --display-name NAME [--etag ETAG]",
		Short: "Rename an API key",
		Args:  exactArgs("KEY"),
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "new human-readable name")
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the key still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, cmd *cobra.Command, args []string) error {
		name, err := apiKeyName("API key", args[0])
		if err != nil {
			return err
		}
		key := &dzconnectv1.ApiKey{Name: name, Etag: etag}
		var mask fieldmaskpb.FieldMask
		if cmd.Flags().Changed("display-name") {
			key.DisplayName = displayName
			mask.Paths = append(mask.Paths, "display_name")
		}
		if len(mask.Paths) == 0 {
			return usageErrorf("nothing to update: give --display-name")
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		resp, err := c.apiKeys.UpdateApiKey(ctx, &dzconnectv1.UpdateApiKeyRequest{ApiKey: key, UpdateMask: &mask})
		if err != nil {
			return err
		}
		return inv.printAPIKey(resp.GetApiKey())
	})
	return cmd
}

func (inv *invocation) apiKeyDelete() *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "delete KEY [--etag ETAG]",
		Short: "Revoke an API key at once",
		Args:  exactArgs("KEY"),
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the key still has this etag")
	cmd.RunE = inv.action(func(ctx context.Context, _ *cobra.Command, args []string) error {
		name, err := apiKeyName("API key", args[0])
		if err != nil {
			return err
		}
		c, err := inv.clients()
		if err != nil {
			return err
		}
		if _, err := c.apiKeys.DeleteApiKey(ctx, &dzconnectv1.DeleteApiKeyRequest{Name: name, Etag: etag}); err != nil {
			return err
		}
		return inv.printer().deleted(name)
	})
	return cmd
}

func (inv *invocation) printAPIKey(k *dzconnectv1.ApiKey, extra ...field) error {
	fields := []field{
		{"Name", k.GetName()},
		{"Display name", k.GetDisplayName()},
		{"Role", short(k.GetRole())},
		{"Key prefix", k.GetKeyPrefix()},
		{"Expires", timeString(k.GetExpireTime())},
		{"Created", timeString(k.GetCreateTime())},
		{"Updated", timeString(k.GetUpdateTime())},
		{"Etag", k.GetEtag()},
	}
	return inv.printer().resource(k, append(fields, extra...))
}
