// Package guest runs a package's tests inside a qemu guest booting a pinned
// Debian kernel, for kernel features the host will not give a test: the
// host refuses to load BPF LSM programs (EPERM), so internal/bpflsm is
// tested in a guest, from `go test` as root.
//
// A package opts in with a TestMain that calls Main, and a host test that
// calls Run:
//
//	func TestMain(m *testing.M) { guest.Main(m) }
//
//	func TestInGuest(t *testing.T) {
//		guest.Run(t, guest.Options{Run: "^TestGuest"})
//	}
//
//	func TestGuestLSM(t *testing.T) {
//		guest.RequireGuest(t) // skips on the host
//		...
//	}
//
// Run builds the package's test binary statically, packs it as /init into
// an initramfs (with busybox, the requested host programs and their shared
// libraries, kernel modules and fixtures), boots the kernel cached by
// .ci/guest-kernel.sh with it, streams the serial console into the test's
// log and fails the test unless the guest's tests passed. In the guest,
// Main is PID 1: it mounts the pseudo filesystems, loads the modules, runs
// the same binary as a child with the requested -test flags, prints a
// result line on the console and powers the guest off. The child, not PID
// 1, runs the tests, so that a panic, an os.Exit or a -test.timeout in a
// test still ends in a result line and a power-off rather than a hung or
// panicked guest.
//
// Missing prerequisites (root, qemu, cpio, busybox, the cached kernel)
// skip the host test with the reason, and fail it under CI=true, as
// internal/testutil does elsewhere.
//
// Files: guest.go (API, shared by host and guest), guest_linux.go (Run on
// the host), init_linux.go (Main's PID 1 side in the guest),
// guest_other.go (stubs that skip).
package guest

import (
	"os"
	"testing"
	"time"
)

// KernelRelease is the release (uname -r) of the pinned guest kernel that
// .ci/guest-kernel.sh fetches; change both together.
const KernelRelease = "6.18.15+deb13-cloud-amd64"

// KernelEnv names the environment variable with the directory of an
// unpacked guest kernel (vmlinuz and lib/modules/<release>/), as printed
// by .ci/guest-kernel.sh; scripts/test.sh exports it.
const KernelEnv = "DRMFILTER_GUEST_KERNEL"

// CacheEnv names the environment variable with the cache root of
// .ci/guest-kernel.sh (default /var/cache/drmfilter): without KernelEnv,
// Run boots <root>/guest-kernel/<KernelRelease>.
const CacheEnv = "DRMFILTER_GUEST_CACHE"

// inGuestEnv is set to "1" by the guest's PID 1 for the processes it
// starts: it tells the test binary's child run (and whatever the tests
// start) that they are in the guest.
const inGuestEnv = "DRMFILTER_IN_GUEST"

// configPath is where Run puts the guest's instructions in the initramfs.
// A file rather than the kernel command line: it has no 2 KiB limit and
// needs no quoting.
const configPath = "/drmfilter-guest.json"

// resultMarker starts the line, followed by a per-boot nonce and
// "exit=<code>", that the guest's PID 1 prints when the tests have run.
const resultMarker = "DRMFILTER-GUEST-RESULT"

// Exit codes PID 1 reports for failures of its own, outside the tests.
const (
	exitSetup = 125 // mounting, module loading or starting the tests failed
	exitPanic = 126 // PID 1 itself panicked
)

// RunEnv, when set in the host's environment, replaces Options.Run: a
// developer narrows a guest run to the test at hand, e.g.
// DRMFILTER_GUEST_RUN='TestPolicyOnAMountThatAppearsLater/bpf'.
const RunEnv = "DRMFILTER_GUEST_RUN"

// Options says what Run boots and runs in the guest.
type Options struct {
	// Run is the -test.run pattern for the guest's run of the package's
	// tests; empty runs them all (host-only tests, including the one
	// calling Run, skip themselves in the guest).
	Run string
	// Verbose passes -test.v, so every test's log reaches the console.
	Verbose bool
	// Tags are build tags for the guest's test binary.
	Tags []string
	// Timeout bounds the whole boot, from qemu's start to its exit; after
	// it qemu is killed and the test fails. Zero means DefaultTimeout,
	// shortened to the host test's own deadline if that comes first.
	Timeout time.Duration
	// Extra adds files or directory trees to the initramfs: host path ->
	// guest path. A relative guest path is relative to the tests' working
	// directory in the guest (WorkDir), so {"testdata": "testdata"}
	// gives the guest the package's testdata directory.
	Extra map[string]string
	// Programs are host executables to copy into the guest at the same
	// path, with the shared libraries ldd lists for them: names are
	// looked up in PATH and the sbin directories (for example
	// "mkfs.ext4", which busybox does not provide).
	Programs []string
	// Modules are kernel modules to load in the guest, by name, in this
	// order (list a module's dependencies before it; the kernel package
	// has no modules.dep). Modules built into the kernel are left out.
	// "loop" is always loaded.
	Modules []string
	// Cmdline is appended to the kernel command line.
	Cmdline string
	// Kernel is the directory of the unpacked kernel; empty means
	// $DRMFILTER_GUEST_KERNEL, else KernelRelease in the cache of
	// .ci/guest-kernel.sh ($DRMFILTER_GUEST_CACHE or /var/cache/drmfilter).
	Kernel string
	// MemoryMiB is the guest's memory; zero means 1024.
	MemoryMiB int
}

// DefaultTimeout bounds a boot when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// WorkDir is the working directory of the tests in the guest.
const WorkDir = "/work"

// InGuest reports whether this process runs inside a guest started by Run.
func InGuest() bool { return os.Getenv(inGuestEnv) == "1" }

// RequireGuest skips t unless it runs inside the guest: such a test needs
// what only the guest kernel gives (BPF LSM) and changes a machine that
// only the guest can afford to change. It never fails on the host, not
// even in CI: CI runs it through Run.
func RequireGuest(t testing.TB) {
	t.Helper()
	if !InGuest() {
		t.Skip("skipping: runs only inside the qemu guest (guest.Run boots it)")
	}
}

// guestConfig is what Run tells the guest's PID 1, as JSON in configPath.
type guestConfig struct {
	// Nonce is repeated in the result line, so that no test output can
	// fake it.
	Nonce string `json:"nonce"`
	// Args are the test binary's arguments (the -test.* flags).
	Args []string `json:"args"`
	// Modules are guest paths of kernel modules to load, in order.
	Modules []string `json:"modules"`
}
