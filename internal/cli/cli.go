package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes returned by [App.Execute].
const (
	ExitOK    = 0 // success
	ExitError = 1 // the request failed (API error, unreadable file, ...)
	ExitUsage = 2 // bad command line: unknown command or flag, bad value
	// ExitUnhealthy: dzctl check ran and the integration does not work
	// (broken, blocked-by-policy, or another outcome than healthy, degraded
	// or propagating).
	ExitUnhealthy = 3
)

// Environment variables read when the matching flag is not given. They
// win over the current context of the config file (see config.go).
const (
	EnvAddr   = "DZCONNECT_ADDR"
	EnvAPIKey = "DZCONNECT_API_KEY"
	EnvOrg    = "DZCONNECT_ORG" // default --org of the commands that have one
	EnvConfig = "DZCTL_CONFIG"  // config file (default ~/.config/dzctl/config.yaml)
	EnvCtx    = "DZCTL_CONTEXT" // context to use instead of the file's current-context
)

// DefaultAddr is the server's default gRPC listen address.
const DefaultAddr = "127.0.0.1:9090"

// App is the dzctl program with its IO and environment injected.
type App struct {
	stdin        io.Reader
	stdout       io.Writer
	stderr       io.Writer
	getenv       func(string) string
	dialOpts     []grpc.DialOption
	newRequestID func() string
}

// Option configures an [App].
type Option func(*App)

// WithDialOptions appends gRPC dial options after dzctl's own (transport
// credentials, API-key interceptor, retry policy), so they can override them.
// Tests pass grpc.WithContextDialer to reach a bufconn listener.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(a *App) { a.dialOpts = append(a.dialOpts, opts...) }
}

// WithGetenv replaces os.Getenv for the variables dzctl reads (DZCONNECT_*,
// DZCTL_*, and HOME and XDG_CONFIG_HOME to find the config file).
func WithGetenv(getenv func(string) string) Option {
	return func(a *App) { a.getenv = getenv }
}

// WithRequestIDFunc replaces the generator of default request IDs
// (a fresh UUIDv4 per invocation).
func WithRequestIDFunc(f func() string) Option {
	return func(a *App) { a.newRequestID = f }
}

// New returns dzctl reading from stdin and writing to stdout and stderr.
func New(stdin io.Reader, stdout, stderr io.Writer, opts ...Option) *App {
	a := &App{
		stdin:        stdin,
		stdout:       stdout,
		stderr:       stderr,
		getenv:       os.Getenv,
		newRequestID: func() string { return uuid.NewString() },
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Execute runs one dzctl invocation with args (without the program name)
// and returns the exit code. Errors are reported on stderr.
func (a *App) Execute(ctx context.Context, args []string) int {
	inv := &invocation{app: a}
	root := inv.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if inv.conn != nil {
		_ = inv.conn.Close()
	}
	if err == nil {
		return ExitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return ec.code // the command already reported its result
	}
	var re *runError
	if errors.As(err, &re) {
		printError(a.stderr, re.err)
		if st, ok := status.FromError(re.err); ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), "connection error") {
			fmt.Fprintf(a.stderr, "Hint: is dzconnect reachable at %s? Check --addr (or $%s) and whether the server wants --tls or --ca-file.\n", inv.addr, EnvAddr)
		}
		return ExitError
	}
	// Anything else comes from the command line: cobra's flag and argument
	// parsing, or a usageError of ours.
	fmt.Fprintf(a.stderr, "Error: %s\n", err)
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return ExitUsage
}

// invocation holds the global flags and the connection of one Execute.
type invocation struct {
	app *App

	addr               string
	apiKey             string
	useTLS             bool
	caFile             string
	insecureSkipVerify bool
	output             string
	field              string
	timeout            time.Duration
	checkTimeout       time.Duration // dzctl check --wait: --timeout, for the check call only
	requestID          string
	contextName        string

	// context is the config file's context in use, nil when none.
	context *contextEntry
	conn    *grpc.ClientConn
}

func (inv *invocation) rootCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dzctl",
		Short: "dzctl manages dzconnect organizations, tenants and Microsoft integrations",
		Long: `dzctl is the command-line client of the dzconnect API.

It talks gRPC to the server at --addr (or $` + EnvAddr + `, default ` + DefaultAddr + `)
and authenticates with the API key from --api-key or $` + EnvAPIKey + `.
Resource names are AIP names, e.g. organizations/ORG/tenants/TENANT.

Settings come from flags, then environment variables, then the current
context of the config file ($` + EnvConfig + `, default ~/.config/dzctl/config.yaml;
see 'dzctl config'). Output for scripts: -o json|yaml|name, or --field PATH.
Shell completion: 'dzctl completion bash|zsh|fish|powershell --help'.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.ArbitraryArgs,
		RunE:              groupRunE,
		PersistentPreRunE: inv.resolveGlobals,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%s", err) })
	// cobra's completion command: dzctl completion bash|zsh|fish|powershell.
	cmd.CompletionOptions.HiddenDefaultCmd = false

	f := cmd.PersistentFlags()
	f.StringVar(&inv.addr, "addr", DefaultAddr, "server gRPC address host:port (env "+EnvAddr+")")
	f.StringVar(&inv.apiKey, "api-key", "", "API key, sent as 'authorization: Bearer KEY' (env "+EnvAPIKey+"); prefer the env variable")
	f.BoolVar(&inv.useTLS, "tls", false, "use TLS (plaintext by default, for local development)")
	f.StringVar(&inv.caFile, "ca-file", "", "PEM file of CA certificates to verify the server with (implies --tls)")
	f.BoolVar(&inv.insecureSkipVerify, "insecure-skip-verify", false, "do not verify the server certificate (implies --tls; testing only)")
	f.StringVarP(&inv.output, "output", "o", outputTable, "output format: "+strings.Join(outputFormats, ", ")+" (name: resource names, one per line)")
	f.StringVar(&inv.field, "field", "", "print only this field of the result, one line per resource: a dotted path as in -o json, e.g. name, integration.application.clientId, tenants.name")
	f.StringVar(&inv.contextName, "context", "", "context of the config file to use (env "+EnvCtx+"; default: its current-context)")
	f.DurationVar(&inv.timeout, "timeout", 30*time.Second, "deadline for the whole command, including every page of a list")
	f.StringVar(&inv.requestID, "request-id", "", "idempotency key (UUID) for create commands (default: a fresh UUIDv4 per invocation)")

	cmd.AddCommand(
		inv.orgCommand(),
		inv.apiKeyCommand(),
		inv.tenantCommand(),
		inv.integrationCommand(),
		inv.checkCommand(),
		inv.auditCommand(),
		inv.catalogCommand(),
		inv.webhookCommand(),
		inv.operationCommand(),
		inv.sharedAppCommand(),
		inv.credentialCommand(),
		inv.tokenCommand(),
		inv.configCommand(),
	)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("context", inv.completeContexts)
	return cmd
}

// resolveGlobals applies environment and config-file defaults and checks
// global flags. Precedence: flags, then environment, then the context.
func (inv *invocation) resolveGlobals(cmd *cobra.Command, _ []string) error {
	if cmd.HasParent() && cmd.Parent().Name() == "completion" {
		return nil // a completion script needs no server, context or output format
	}
	if err := inv.checkOutputFlags(); err != nil {
		return err
	}
	if err := inv.loadContext(); err != nil {
		return err
	}
	ctx := inv.context
	if ctx == nil {
		ctx = &contextEntry{}
	}
	flags := cmd.Flags()
	if !flags.Changed("addr") {
		if v := inv.app.getenv(EnvAddr); v != "" {
			inv.addr = v
		} else if ctx.Addr != "" {
			inv.addr = ctx.Addr
		}
	}
	if !flags.Changed("api-key") {
		inv.apiKey = inv.app.getenv(EnvAPIKey)
		if inv.apiKey == "" {
			key, err := ctx.apiKey()
			if err != nil {
				return err
			}
			inv.apiKey = key
		}
	}
	inv.apiKey = strings.TrimSpace(inv.apiKey)
	// TLS: any of the three flags decides alone; otherwise the context's.
	if !flags.Changed("tls") && !flags.Changed("ca-file") && !flags.Changed("insecure-skip-verify") {
		inv.useTLS, inv.caFile, inv.insecureSkipVerify = ctx.TLS, ctx.caFile(), ctx.InsecureSkipVerify
	}
	if err := inv.defaultOrg(cmd, ctx); err != nil {
		return err
	}
	if inv.timeout < 0 {
		return usageErrorf("invalid --timeout %s: must not be negative", inv.timeout)
	}
	if inv.requestID == "" {
		inv.requestID = inv.app.newRequestID()
	} else if _, err := uuid.Parse(inv.requestID); err != nil {
		return usageErrorf("invalid --request-id %q: want a UUID", inv.requestID)
	}
	return nil
}

// checkOutputFlags checks --output and --field.
func (inv *invocation) checkOutputFlags() error {
	if !slices.Contains(outputFormats, inv.output) {
		return usageErrorf("invalid --output %q: want %s", inv.output, strings.Join(outputFormats, ", "))
	}
	if inv.field == "" {
		return nil
	}
	if inv.output == outputName {
		return usageErrorf("--field and -o name cannot be used together")
	}
	for _, part := range strings.Split(inv.field, ".") {
		if part == "" {
			return usageErrorf("invalid --field %q: want field names separated by dots, e.g. integration.name", inv.field)
		}
	}
	return nil
}

// defaultOrg fills the command's --org, when it has one and neither --org
// nor --tenant was given, from $DZCONNECT_ORG or the context's organization.
func (inv *invocation) defaultOrg(cmd *cobra.Command, ctx *contextEntry) error {
	f := cmd.Flags().Lookup("org")
	if f == nil || f.Changed || cmd.Flags().Changed("tenant") {
		return nil
	}
	org := inv.app.getenv(EnvOrg)
	if org == "" {
		org = ctx.Organization
	}
	if org == "" {
		return nil
	}
	if err := cmd.Flags().Set("org", org); err != nil {
		return usageErrorf("invalid organization %q: %v", org, err)
	}
	return nil
}

// groupRunE runs a command that only groups subcommands: without arguments
// it prints help, with any it reports an unknown command.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
}

// group returns a command that only holds subcommands.
func group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Aliases: aliases,
		Args:    cobra.ArbitraryArgs,
		RunE:    groupRunE,
	}
}

// action adapts a command body: it applies --timeout and marks every error
// that is not a usage error as a run-time failure (exit code 1).
func (inv *invocation) action(fn func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if inv.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, inv.timeout)
			defer cancel()
		}
		err := fn(ctx, cmd, args)
		if err == nil {
			return nil
		}
		var ue *usageError
		if errors.As(err, &ue) {
			return err
		}
		return &runError{err: err}
	}
}

// exactArgs is cobra.ExactArgs with a usage error naming the arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("expected %d argument(s) %s, got %d", len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// requireFlags reports the first of names that was not given.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("required flag(s) %s not set", strings.Join(missing, ", "))
	}
	return nil
}
