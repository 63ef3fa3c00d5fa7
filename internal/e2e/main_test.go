// Package e2e tests dzconnect end to end: a real server in-process
// (internal/testsupport/stack) on a real Postgres and a real Vault, driven
// through the generated gRPC clients and through REST.
package e2e

import (
	"testing"

	"github.com/dropzoneai/dzconnect/internal/testsupport/stack"
)

// TestMain removes the dzconnect binary the kill tests build (about
// 180 MB) when the package's tests end.
func TestMain(m *testing.M) { stack.Main(m, removeServeBinary) }
