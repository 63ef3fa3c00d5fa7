// Package crashpoint lets a test kill a real dzconnect process at a named
// point of its work, deterministically: when the environment variable
// DZCONNECT_TEST_CRASH_AT names a point, the process SIGKILLs itself the
// first time it reaches that point (as power loss or the OOM killer
// would: no deferred function, no graceful shutdown, no flushed buffer).
// Unset, as in every real deployment, Hit is one string comparison.
//
// Points are "<operation kind>:<step>:<where>", e.g.
// "provision:client-secret:after_call". The operation runner marks every
// step's boundaries ("returned": the step's work is done, its outcome not
// recorded yet; "recorded": the outcome committed, the next step not
// started); steps mark the places between a Microsoft call and its record
// ("after_call", and others named at the call site). The kill test
// (internal/e2e/kill_test.go) walks them; docs/provisioning.md has the
// matrix.
package crashpoint

import (
	"fmt"
	"os"
)

// Env names the point to die at.
const Env = "DZCONNECT_TEST_CRASH_AT"

// target is read once: the point cannot change while the process runs.
var target = os.Getenv(Env)

// Name builds a point's name.
func Name(kind, step, where string) string { return kind + ":" + step + ":" + where }

// Hit kills the process with SIGKILL when point is the one named by
// DZCONNECT_TEST_CRASH_AT, after one line on stderr saying so (how the
// test knows the process died there and not elsewhere). Otherwise it
// returns at once.
func Hit(point string) {
	if target == "" || point != target {
		return
	}
	_, _ = fmt.Fprintf(os.Stderr, "crashpoint: killing the process at %s\n", point)
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		_ = p.Kill() // SIGKILL on Unix
	}
	select {} // the signal is on its way; nothing after the point runs
}
