// Package testutil holds helpers for drmfilter's kernel-facing tests: the
// policy for missing privileges or kernel features (RequireRoot,
// RequireFanotify), a private tmpfs to mark (MountTmpfs) and descriptor-leak
// checks (CheckFDLeaks, RunWithFDCheck) for code that hands out one
// descriptor per fanotify event.
//
// Policy: a test that cannot run here is skipped with the reason, never
// passed silently; when CI=true the same condition fails the test, because
// CI runs as root on a kernel with fanotify permission events and a skip
// there would hide a broken setup.
//
// Files: testutil.go (policy, neutral), testutil_linux.go (probes, tmpfs,
// /proc/self/fd), testutil_other.go (stubs that skip).
package testutil

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where missing
// prerequisites are failures rather than skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// unavailable skips t with reason, or fails it in CI.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but %s", reason)
	} else {
		t.Skip("skipping: " + reason)
	}
}

// RequireRoot skips t unless the effective user is root (fails it in CI).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "test needs root (effective uid 0)")
	}
}

// leaked describes descriptors open in after but not in before, or open at
// the same number to something else.
func leaked(before, after map[int]string) []string {
	var out []string
	for fd, target := range after {
		if was, ok := before[fd]; !ok || was != target {
			out = append(out, fmt.Sprintf("fd %d -> %s", fd, target))
		}
	}
	slices.Sort(out)
	return out
}

// SerialEnv is set (to 1) by scripts/test.sh for its serial phase, in which
// no other test runs on the machine.
const SerialEnv = "DRMFILTER_SERIAL_TESTS"

// SerialOnly skips t unless it runs in scripts/test.sh's serial phase: t
// changes a machine-wide setting (a sysctl such as fanotify's
// max_queued_events) that would change what tests of other packages,
// which `go test ./...` runs at the same time, see. Such a test's name
// must end in "Serial": the serial phase runs `-run 'Serial$'`.
func SerialOnly(t testing.TB) {
	t.Helper()
	if !strings.HasSuffix(t.Name(), "Serial") {
		t.Fatalf("%s changes machine-wide settings: name it ...Serial so that scripts/test.sh's serial phase runs it", t.Name())
	}
	if os.Getenv(SerialEnv) != "1" {
		t.Skipf("skipping: changes a machine-wide setting; scripts/test.sh runs it alone (%s=1, -run 'Serial$')", SerialEnv)
	}
}
