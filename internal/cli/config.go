package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// The config file holds named contexts, like kubectl's kubeconfig: where a
// server is, how to authenticate and verify it, and a default organization.
//
//	current-context: prod
//	contexts:
//	  - name: prod
//	    addr: dzconnect.example.com:443
//	    tls: true
//	    ca-file: prod-ca.pem            # relative to this file's directory
//	    api-key-file: ~/.dzconnect/prod.key
//	    organization: contoso
//	  - name: dev
//	    addr: 127.0.0.1:9090
//
// Flags win over environment variables, which win over the context.
// dzctl rewrites the file (mode 0600) when a config command changes it.
type configFile struct {
	CurrentContext string          `yaml:"current-context,omitempty" json:"currentContext,omitempty"`
	Contexts       []*contextEntry `yaml:"contexts" json:"contexts"`
}

// contextEntry is one context of the config file.
type contextEntry struct {
	Name               string `yaml:"name" json:"name"`
	Addr               string `yaml:"addr,omitempty" json:"addr,omitempty"`
	APIKey             string `yaml:"api-key,omitempty" json:"-"`
	APIKeyFile         string `yaml:"api-key-file,omitempty" json:"apiKeyFile,omitempty"`
	TLS                bool   `yaml:"tls,omitempty" json:"tls,omitempty"`
	CAFile             string `yaml:"ca-file,omitempty" json:"caFile,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure-skip-verify,omitempty" json:"insecureSkipVerify,omitempty"`
	Organization       string `yaml:"organization,omitempty" json:"organization,omitempty"`

	dir  string // the config file's directory, for relative paths
	home string // $HOME, for ~/
}

// path resolves a path of the file: ~/ is the home directory, a relative
// path is relative to the config file's directory.
func (c *contextEntry) path(p string) string {
	switch {
	case p == "":
		return ""
	case strings.HasPrefix(p, "~/") && c.home != "":
		return filepath.Join(c.home, p[2:])
	case filepath.IsAbs(p) || c.dir == "":
		return p
	default:
		return filepath.Join(c.dir, p)
	}
}

func (c *contextEntry) caFile() string { return c.path(c.CAFile) }

// apiKey is the context's key: the content of api-key-file, else api-key.
func (c *contextEntry) apiKey() (string, error) {
	if c.APIKeyFile == "" {
		return c.APIKey, nil
	}
	b, err := os.ReadFile(c.path(c.APIKeyFile))
	if err != nil {
		return "", fmt.Errorf("context %q: reading api-key-file: %w", c.Name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// auth describes how the context authenticates, never the key itself.
func (c *contextEntry) auth() string {
	switch {
	case c.APIKeyFile != "":
		return "key file " + c.APIKeyFile
	case c.APIKey != "":
		return "key in config"
	}
	return ""
}

func (c *contextEntry) tlsString() string {
	switch {
	case c.InsecureSkipVerify:
		return "insecure-skip-verify"
	case c.CAFile != "":
		return "ca-file " + c.CAFile
	case c.TLS:
		return "yes"
	}
	return "no"
}

func (f *configFile) find(name string) *contextEntry {
	for _, c := range f.Contexts {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (f *configFile) names() []string {
	names := make([]string, 0, len(f.Contexts))
	for _, c := range f.Contexts {
		names = append(names, c.Name)
	}
	return names
}

// configPath is $DZCTL_CONFIG, else $XDG_CONFIG_HOME/dzctl/config.yaml,
// else ~/.config/dzctl/config.yaml; "" when there is no home directory.
func (inv *invocation) configPath() string {
	if p := inv.app.getenv(EnvConfig); p != "" {
		return p
	}
	if x := inv.app.getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "dzctl", "config.yaml")
	}
	if h := inv.app.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "dzctl", "config.yaml")
	}
	return ""
}

// readConfig reads the config file; a missing file is an empty config.
func (inv *invocation) readConfig() (*configFile, string, error) {
	path := inv.configPath()
	cfg := &configFile{}
	if path == "" {
		return cfg, "", nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("reading config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
		return nil, path, usageErrorf("config file %s: %v", path, err)
	}
	seen := map[string]bool{}
	for i, c := range cfg.Contexts {
		if c == nil || c.Name == "" {
			return nil, path, usageErrorf("config file %s: context %d has no name", path, i+1)
		}
		if seen[c.Name] {
			return nil, path, usageErrorf("config file %s: context %q appears twice", path, c.Name)
		}
		seen[c.Name] = true
		c.dir, c.home = filepath.Dir(path), inv.app.getenv("HOME")
	}
	return cfg, path, nil
}

// writeConfig replaces the config file atomically, readable by its owner
// only (it may hold API keys).
func writeConfig(path string, cfg *configFile) error {
	if path == "" {
		return errors.New("no config file: set $" + EnvConfig + " or $HOME")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("encoding config file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding config file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after a successful rename, a no-op
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("writing config file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	return nil
}

// loadContext sets inv.context: --context, else $DZCTL_CONTEXT, else the
// file's current-context; none when none is named.
func (inv *invocation) loadContext() error {
	name := inv.contextName
	if name == "" {
		name = inv.app.getenv(EnvCtx)
	}
	cfg, path, err := inv.readConfig()
	if err != nil {
		return err
	}
	explicit := name != ""
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil
	}
	c := cfg.find(name)
	if c == nil {
		what := "current-context"
		if explicit {
			what = "context"
		}
		return usageErrorf("%s %q is not in the config file %s (contexts: %s); see 'dzctl config get-contexts'", what, name, orDash(path), orDash(strings.Join(cfg.names(), ", ")))
	}
	inv.context = c
	return nil
}

// completeContexts completes context names.
func (inv *invocation) completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	cfg, _, err := inv.readConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return cfg.names(), cobra.ShellCompDirectiveNoFileComp
}

func (inv *invocation) configCommand() *cobra.Command {
	cmd := group("config", "Manage contexts in the config file (~/.config/dzctl/config.yaml or $"+EnvConfig+")")
	cmd.Long = `A context names a server and how to reach it: address, API key (or key
file), TLS settings and a default organization for --org. Flags win over
environment variables, which win over the context:

  --addr                 > $` + EnvAddr + `    > addr
  --api-key              > $` + EnvAPIKey + ` > api-key-file, api-key
  --tls, --ca-file, --insecure-skip-verify   > tls, ca-file, insecure-skip-verify
  --org (or --tenant)    > $` + EnvOrg + `     > organization

The context used is --context, else $` + EnvCtx + `, else the file's current-context.`
	// Config commands edit the file, so they do not apply a context (a
	// broken current-context must not stop its repair).
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return inv.checkOutputFlags() }
	cmd.AddCommand(inv.configGetContexts(), inv.configCurrentContext(), inv.configUseContext(), inv.configSetContext(), inv.configDeleteContext())
	return cmd
}

func (inv *invocation) configGetContexts() *cobra.Command {
	return &cobra.Command{
		Use:     "get-contexts",
		Short:   "List the contexts; * marks the current one",
		Example: "  dzctl config get-contexts\n  dzctl config get-contexts -o name",
		Args:    noArgs,
		RunE: inv.action(func(_ context.Context, _ *cobra.Command, _ []string) error {
			cfg, path, err := inv.readConfig()
			if err != nil {
				return err
			}
			p := inv.printer()
			switch {
			case p.field != "":
				return usageErrorf("--field is not supported by config commands; use -o json")
			case p.format == outputName:
				for _, n := range cfg.names() {
					fmt.Fprintln(p.out, n)
				}
				return nil
			case p.format == outputJSON || p.format == outputYAML:
				return p.plain(cfg)
			}
			if len(cfg.Contexts) == 0 {
				fmt.Fprintf(p.errw, "No contexts found in %s.\n", orDash(path))
				return nil
			}
			tw := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CURRENT\tNAME\tADDR\tORGANIZATION\tTLS\tAUTH")
			for _, c := range cfg.Contexts {
				cur := ""
				if c.Name == cfg.CurrentContext {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cur, c.Name, orDash(c.Addr), orDash(c.Organization), c.tlsString(), orDash(c.auth()))
			}
			return tw.Flush()
		}),
	}
}

// plain prints v (a config value, never a secret) as JSON or YAML.
func (p *printer) plain(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if p.format == outputYAML {
		return p.yaml(raw)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = p.out.Write(buf.Bytes())
	return err
}

func (inv *invocation) configCurrentContext() *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context's name",
		Args:  noArgs,
		RunE: inv.action(func(_ context.Context, _ *cobra.Command, _ []string) error {
			cfg, path, err := inv.readConfig()
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return fmt.Errorf("no current-context in %s; see 'dzctl config use-context'", orDash(path))
			}
			_, err = fmt.Fprintln(inv.app.stdout, cfg.CurrentContext)
			return err
		}),
	}
}

func (inv *invocation) configUseContext() *cobra.Command {
	return &cobra.Command{
		Use:               "use-context NAME",
		Short:             "Make NAME the current context",
		Example:           "  dzctl config use-context prod",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: inv.completeContexts,
		RunE: inv.action(func(_ context.Context, _ *cobra.Command, args []string) error {
			cfg, path, err := inv.readConfig()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) == nil {
				return usageErrorf("context %q is not in %s (contexts: %s)", args[0], orDash(path), orDash(strings.Join(cfg.names(), ", ")))
			}
			cfg.CurrentContext = args[0]
			if err := writeConfig(path, cfg); err != nil {
				return err
			}
			_, err = fmt.Fprintf(inv.app.stdout, "Switched to context %q.\n", args[0])
			return err
		}),
	}
}

func (inv *invocation) configSetContext() *cobra.Command {
	var apiKeyFile, org string
	var use bool
	cmd := &cobra.Command{
		Use:   "set-context NAME [--addr HOST:PORT] [--api-key-file FILE] [--tls] [--ca-file FILE] [--insecure-skip-verify] [--org ORG] [--use]",
		Short: "Create a context, or change the settings given of an existing one",
		Long: `Creates the context NAME, or changes the settings given on the command line
of an existing one; a setting given as "" is removed. The global flags --addr,
--tls, --ca-file and --insecure-skip-verify give the context's values.
Prefer --api-key-file (the file is read on each call) to --api-key (the key is
then written into the config file, which dzctl keeps at mode 0600).`,
		Example: `  dzctl config set-context prod --addr dzconnect.example.com:443 --ca-file ./prod-ca.pem \
      --api-key-file ~/.dzconnect/prod.key --org contoso --use
  dzctl config set-context dev --addr 127.0.0.1:9090
  dzctl config set-context prod --org fabrikam`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: inv.completeContexts,
	}
	cmd.Flags().StringVar(&apiKeyFile, "api-key-file", "", "file holding the API key (relative paths are relative to the config file; ~/ is the home directory)")
	cmd.Flags().StringVar(&org, "org", "", "default organization for --org, ORG or organizations/ORG")
	cmd.Flags().BoolVar(&use, "use", false, "also make it the current context")
	cmd.RunE = inv.action(func(_ context.Context, cmd *cobra.Command, args []string) error {
		name := args[0]
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, "\n\r\t") {
			return usageErrorf("invalid context name %q", name)
		}
		fl := cmd.Flags()
		if fl.Changed("org") && org != "" {
			if _, err := orgName("--org", org); err != nil {
				return err
			}
		}
		if fl.Changed("api-key") && fl.Changed("api-key-file") {
			return usageErrorf("--api-key and --api-key-file cannot be used together")
		}
		cfg, path, err := inv.readConfig()
		if err != nil {
			return err
		}
		c := cfg.find(name)
		created := c == nil
		if created {
			c = &contextEntry{Name: name}
			cfg.Contexts = append(cfg.Contexts, c)
		}
		if fl.Changed("addr") {
			c.Addr = inv.addr
		}
		if fl.Changed("api-key") {
			c.APIKey, c.APIKeyFile = strings.TrimSpace(inv.apiKey), ""
		}
		if fl.Changed("api-key-file") {
			c.APIKeyFile, c.APIKey = apiKeyFile, ""
		}
		if fl.Changed("tls") {
			c.TLS = inv.useTLS
		}
		if fl.Changed("ca-file") {
			c.CAFile = inv.caFile
		}
		if fl.Changed("insecure-skip-verify") {
			c.InsecureSkipVerify = inv.insecureSkipVerify
		}
		if fl.Changed("org") {
			c.Organization = strings.TrimPrefix(org, "organizations/")
		}
		if use || cfg.CurrentContext == "" {
			cfg.CurrentContext = name
		}
		if err := writeConfig(path, cfg); err != nil {
			return err
		}
		verb := "Modified"
		if created {
			verb = "Created"
		}
		_, err = fmt.Fprintf(inv.app.stdout, "%s context %q in %s%s.\n", verb, name, path, map[bool]string{true: " (current)"}[cfg.CurrentContext == name])
		return err
	})
	return cmd
}

func (inv *invocation) configDeleteContext() *cobra.Command {
	return &cobra.Command{
		Use:               "delete-context NAME",
		Short:             "Remove a context from the config file",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: inv.completeContexts,
		RunE: inv.action(func(_ context.Context, _ *cobra.Command, args []string) error {
			cfg, path, err := inv.readConfig()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) == nil {
				return usageErrorf("context %q is not in %s", args[0], orDash(path))
			}
			kept := cfg.Contexts[:0]
			for _, c := range cfg.Contexts {
				if c.Name != args[0] {
					kept = append(kept, c)
				}
			}
			cfg.Contexts = kept
			if cfg.CurrentContext == args[0] {
				cfg.CurrentContext = ""
			}
			if err := writeConfig(path, cfg); err != nil {
				return err
			}
			_, err = fmt.Fprintf(inv.app.stdout, "Deleted context %q.\n", args[0])
			return err
		}),
	}
}
