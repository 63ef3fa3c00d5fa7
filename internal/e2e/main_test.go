// Package e2e tests dzconnect end to end: a real server in-process
// (internal/testsupport/stack) on a real Postgres and a real Vault, driven
// through the generated gRPC clients and through REST.
package e2e

import (
	"os"
	"testing"

	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestMain removes the dzconnect binary the kill tests build (about
// 180 MB) when the package's tests end. Started as a rate-limit
// benchmark's flood child, the binary only floods (ratelimit_bench_test.go).
func TestMain(m *testing.M) {
	if job := os.Getenv(floodChildEnv); job != "" {
		os.Exit(floodChild(job))
	}
	stack.Main(m, removeServeBinary)
}
