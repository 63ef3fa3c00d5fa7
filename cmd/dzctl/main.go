// Command dzctl is the command-line client of the dzconnect API.
// See docs/dzctl.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dropzoneai/dzconnect/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.New(os.Stdin, os.Stdout, os.Stderr).Execute(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
