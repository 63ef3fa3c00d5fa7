// Command dzconnect is the dzconnect server: see `dzconnect help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dropzoneai/dzconnect/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
