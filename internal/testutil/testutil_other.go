//go:build !linux

package testutil

import (
	"errors"
	"testing"
)

// RequireFanotify skips t (fails it in CI): fanotify is Linux only.
func RequireFanotify(t testing.TB) {
	t.Helper()
	unavailable(t, "fanotify exists only on Linux")
}

// MountTmpfs skips t (fails it in CI): tmpfs mounts are Linux only here.
func MountTmpfs(t testing.TB) string {
	t.Helper()
	unavailable(t, "tmpfs mounts need Linux")
	return ""
}

// CheckFDLeaks does nothing: descriptors are listed from /proc/self/fd.
func CheckFDLeaks(t testing.TB) {}

// RunWithFDCheck runs the tests of m without a descriptor check.
func RunWithFDCheck(m *testing.M) int { return m.Run() }

// OpenFDs fails: descriptors are listed from /proc/self/fd, on Linux only.
func OpenFDs() (map[int]string, error) {
	return nil, errors.New("testutil: OpenFDs needs /proc/self/fd (Linux)")
}
