//go:build !linux

package guest

import (
	"os"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Main runs the tests of m: there is no guest to be PID 1 of off Linux.
func Main(m *testing.M) { os.Exit(m.Run()) }

// MainFunc is Main with the tests run by run.
func MainFunc(m *testing.M, run func() int) { os.Exit(run()) }

// Run skips t (fails it under CI=true): the guest is a Linux kernel booted
// by qemu from a Linux host.
func Run(t *testing.T, opts Options) {
	t.Helper()
	if testutil.InCI() {
		t.Fatal("CI=true but the qemu guest tests need a Linux host")
	}
	t.Skip("skipping: the qemu guest tests need a Linux host")
}
