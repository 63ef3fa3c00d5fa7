package cli_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/dropzoneai/dzconnect/internal/cli"
)

const testAPIKey = "dzk_test_key_do_not_print"

// harness runs dzctl in-process against a fakeServer over bufconn.
type harness struct {
	t   *testing.T
	srv *fakeServer
	lis *bufconn.Listener
	env map[string]string
}

func newHarness(t *testing.T, serverOpts ...grpc.ServerOption) *harness {
	t.Helper()
	h := &harness{
		t:   t,
		srv: newFakeServer(),
		lis: bufconn.Listen(1 << 20),
		env: map[string]string{
			cli.EnvAddr:   "passthrough:///bufnet",
			cli.EnvAPIKey: testAPIKey,
		},
	}
	s := grpc.NewServer(append(serverOpts, grpc.ChainUnaryInterceptor(h.srv.intercept))...)
	h.srv.register(s)
	lis := h.lis
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return h
}

// result is what one dzctl invocation produced.
type result struct {
	stdout, stderr string
	code           int
}

// run executes dzctl with args, stdin as standard input.
func (h *harness) run(stdin string, args ...string) result {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	app := cli.New(strings.NewReader(stdin), &stdout, &stderr,
		cli.WithGetenv(func(k string) string { return h.env[k] }),
		cli.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return h.lis.DialContext(ctx)
		})),
	)
	code := app.Execute(h.t.Context(), args)
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	for _, secret := range []string{testAPIKey, fakeAPIKeySecret} {
		if secret == fakeAPIKeySecret && isAPIKeyCreate(args) {
			continue // the one place a secret is printed
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			h.t.Errorf("dzctl %v printed a secret:\nstdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
		}
	}
	return r
}

// ok runs dzctl and fails the test unless it exits 0.
func (h *harness) ok(stdin string, args ...string) result {
	h.t.Helper()
	r := h.run(stdin, args...)
	if r.code != cli.ExitOK {
		h.t.Fatalf("dzctl %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// isAPIKeyCreate reports whether args run "apikey create", the one command
// that prints a secret.
func isAPIKeyCreate(args []string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "apikey" && args[i+1] == "create" {
			return true
		}
	}
	return false
}
