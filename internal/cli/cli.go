package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// Environment variables read when the matching flag is not given.
const (
	EnvAddr   = "DZCONNECT_ADDR"
	EnvAPIKey = "DZCONNECT_API_KEY"
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

// WithGetenv replaces os.Getenv for DZCONNECT_ADDR and DZCONNECT_API_KEY.
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
	timeout            time.Duration
	checkTimeout       time.Duration // dzctl check --wait: --timeout, for the check call only
	requestID          string

	conn *grpc.ClientConn
}

func (inv *invocation) rootCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dzctl",
		Short: "dzctl manages dzconnect organizations, tenants and Microsoft integrations",
		Long: `dzctl is the command-line client of the dzconnect API.

It talks gRPC to the server at --addr (or $` + EnvAddr + `, default ` + DefaultAddr + `)
and authenticates with the API key from --api-key or $` + EnvAPIKey + `.
Resource names are AIP names, e.g. organizations/ORG/tenants/TENANT.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.ArbitraryArgs,
		RunE:              groupRunE,
		PersistentPreRunE: inv.resolveGlobals,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%s", err) })
	cmd.CompletionOptions.HiddenDefaultCmd = true

	f := cmd.PersistentFlags()
	f.StringVar(&inv.addr, "addr", DefaultAddr, "server gRPC address host:port (env "+EnvAddr+")")
	f.StringVar(&inv.apiKey, "api-key", "", "API key, sent as 'authorization: Bearer KEY' (env "+EnvAPIKey+"); prefer the env variable")
	f.BoolVar(&inv.useTLS, "tls", false, "use TLS (plaintext by default, for local development)")
	f.StringVar(&inv.caFile, "ca-file", "", "PEM file of CA certificates to verify the server with (implies --tls)")
	f.BoolVar(&inv.insecureSkipVerify, "insecure-skip-verify", false, "do not verify the server certificate (implies --tls; testing only)")
	f.StringVarP(&inv.output, "output", "o", "table", "output format: table or json")
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
	)
	return cmd
}

// resolveGlobals applies environment defaults and checks global flags.
func (inv *invocation) resolveGlobals(cmd *cobra.Command, _ []string) error {
	flags := cmd.Flags()
	if !flags.Changed("addr") {
		if v := inv.app.getenv(EnvAddr); v != "" {
			inv.addr = v
		}
	}
	if !flags.Changed("api-key") {
		inv.apiKey = inv.app.getenv(EnvAPIKey)
	}
	inv.apiKey = strings.TrimSpace(inv.apiKey)
	switch inv.output {
	case "table", "json":
	default:
		return usageErrorf("invalid --output %q: want table or json", inv.output)
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
