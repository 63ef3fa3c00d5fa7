// Package cli implements dzctl, the command-line client of the dzconnect API
// for MSSP operators and scripts.
//
// Every command maps flags onto one API request (or, for list commands, a
// sequence of pages) and prints the result as a table or as protojson. The
// package owns no state between invocations: [App.Execute] builds a fresh
// command tree, dials the server lazily, and returns the process exit code.
//
// IO, environment and gRPC dial options are injected through [New] and its
// options, so tests run commands in-process against a bufconn server:
//
//	lis := bufconn.Listen(1 << 20)
//	app := cli.New(stdin, stdout, stderr,
//		cli.WithGetenv(func(string) string { return "" }),
//		cli.WithDialOptions(grpc.WithContextDialer(
//			func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })))
//	code := app.Execute(ctx, []string{"--addr", "passthrough:///bufnet", "org", "list"})
//
// Secrets are handled with care: the API key comes from --api-key or
// DZCONNECT_API_KEY and only travels as gRPC metadata; integration client
// secrets are read from a file or standard input, never from a flag value;
// neither is ever printed.
package cli
