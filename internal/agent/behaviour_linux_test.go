package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// The agent's behaviour is one suite over both backends: each test in
// behaviourTests runs once per backend (a subtest named for it) through
// forBackends. The fanotify subtests run here; the bpf ones need a kernel
// that runs BPF LSM programs, which this machine's refuses, so
// TestBehaviourInGuest boots a qemu guest kernel and runs them there.
var behaviourTests = []string{
	"TestOpenDecidedByPolicy",
	"TestExecDecidedByPolicy",
	"TestReadAccessDenied",
	"TestAuditModeDeniesNothingAndRecordsEverything",
	"TestOtherNamesOfAProtectedFile",
	"TestFilesCreatedAndRenamedAfterStart",
	"TestReloadSwapsPoliciesAndKeepsTheOldOnError",
	"TestPolicyFileChangesAreReloaded",
	"TestExecutableMountedOverAnAllowedPath",
	"TestExecutablesFollowTheHostFile",
	"TestLeaderExitedThreadIsDecided",
	"TestRenamedOutStaysProtectedAfterReload",
	"TestOldVersionThroughAKeptHandle",
	"TestPolicyOnAMountThatAppearsLater",
}

// guestOnlyTests have a bpf subtest only (the fanotify backend has no
// programs to pin or guard): TestBehaviourInGuest runs them too.
var guestOnlyTests = []string{
	"TestTamperResistance",
	"TestProcessIntegrity",
	"TestPackageScripts",
	"TestExeSpoofedByPrctlIsNotTheProgram",
	"TestScriptsIdentifyTheInterpretersProcess",
}

// forBackends runs test once per backend.
func forBackends(t *testing.T, test func(t *testing.T, backend string)) {
	t.Run(config.BackendFanotify, func(t *testing.T) { test(t, config.BackendFanotify) })
	bpfOnly(t, func(t *testing.T) { test(t, config.BackendBPF) })
}

// bpfOnly runs test as the bpf subtest: in the guest, or on a host whose
// kernel runs BPF LSM programs (elsewhere it skips with the kernel's
// reason; TestBehaviourInGuest runs it in the guest).
func bpfOnly(t *testing.T, test func(t *testing.T)) {
	t.Run(config.BackendBPF, func(t *testing.T) {
		if !guest.InGuest() {
			testutil.RequireRoot(t)
			if a := bpflsm.Probe(); !a.OK {
				t.Skipf("this kernel: %s (TestBehaviourInGuest runs the bpf backend in a guest kernel)", a.Reason)
			}
		}
		test(t)
	})
}

func TestBehaviourInGuest(t *testing.T) {
	if guest.InGuest() {
		t.Skip("already in the guest")
	}
	testutil.RequireRoot(t)
	// The guest has no compiler: the C helpers are built here
	// (testutil.BuildC finds them there).
	extra := map[string]string{
		testutil.BuildC(t, "leaderexit", filepath.Join("..", "proc", "testdata", "leaderexit.c")): "prebuilt-c/leaderexit",
		testutil.BuildC(t, "grab.so", filepath.Join("testdata", "grab.c"), grabFlags...):          "prebuilt-c/grab.so",
		testutil.BuildC(t, "mapper", filepath.Join("testdata", "mapper.c")):                       "prebuilt-c/mapper",
		testutil.BuildC(t, "exespoof", filepath.Join("testdata", "exespoof.c"), exespoofFlags...): "prebuilt-c/exespoof",
	}
	// The drmfilter command and the package's maintainer scripts, for
	// TestPackageScripts: the real CLI at the path the package installs.
	cli := filepath.Join(t.TempDir(), "drmfilter")
	// As the package builds it (internal/dist: PackageTags).
	build := exec.Command("go", "build", "-tags", "nodeploy,nok8s", "-o", cli, "github.com/drmfilter/drmfilter/cmd/drmfilter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the drmfilter command: %v\n%s", err, out)
	}
	extra[cli] = "/usr/bin/drmfilter"
	extra[filepath.Join("..", "dist", "pkg", "scripts", "preremove.sh")] = "/work/pkg-scripts/preremove.sh"
	// pthread_exit loads libgcc_s to unwind the exiting thread; no program
	// staged for the guest links it.
	if out, err := exec.Command("gcc", "-print-file-name=libgcc_s.so.1").Output(); err == nil {
		if lib, err := filepath.EvalSymlinks(strings.TrimSpace(string(out))); err == nil && filepath.IsAbs(lib) {
			extra[lib] = "/lib/x86_64-linux-gnu/libgcc_s.so.1"
		}
	}
	guest.Run(t, guest.Options{
		Extra:   extra,
		Run:     "^(" + strings.Join(append(slices.Clone(behaviourTests), guestOnlyTests...), "|") + ")$/^" + config.BackendBPF + "$",
		Verbose: testing.Verbose(),
		// The tests tell programs apart by their files: real ones, not
		// busybox's applets (one file for all of them).
		Programs: []string{"cat", "head", "tail", "sh", "env", "true", "ln", "mv", "cp"},
		Modules:  []string{"overlay"},
		Timeout:  25 * time.Minute,
	})
}
