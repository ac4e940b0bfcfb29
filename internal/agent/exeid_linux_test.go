package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// setupFailed is the exit status the test scripts below use when building
// their namespace failed, so that it is not taken for a denied open.
const setupFailed = 97

func runSetup(t *testing.T, what, script string) (string, error) {
	t.Helper()
	out, err := run(t, "/", "sh", "-c", script)
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == setupFailed {
		if testutil.InCI() {
			t.Fatalf("%s: could not build the namespace: %s", what, out)
		}
		t.Skipf("%s: could not build the namespace: %s", what, out)
	}
	return out, err
}

// exeDenials returns the deny records of exe whose reason says it is not
// the host's file at its path.
func exeDenials(t *testing.T, h *harness, exe string) int {
	t.Helper()
	n := 0
	for _, r := range h.audit.records(t) {
		if r.Decision == "deny" && r.Exe == exe && strings.Contains(r.Reason, "not the file installed at that path on the host") {
			n++
		}
	}
	return n
}

// Issue #17 case 1: in a mount namespace of its own (unshare -Urm does it
// without privileges; root here), another program bind-mounted over
// /usr/bin/head runs with /proc/PID/exe printing /usr/bin/head. A rule
// `executables: [/usr/bin/head]` means the file installed there on the
// host, so it must not select that program.
func TestExecutableMountedOverAnAllowedPath(t *testing.T) {
	forBackends(t, testExecutableMountedOverAnAllowedPath)
}

func testExecutableMountedOverAnAllowedPath(t *testing.T, backend string) {
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		if testutil.InCI() {
			t.Fatal("unshare is missing")
		}
		t.Skip("unshare is missing")
	}
	head, cat := realPath("head"), realPath("cat")
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)
	plan := h.path("secret/plan.txt")

	out, err := run(t, "/", head, plan)
	mustAllow(t, out, err, "the host's head")
	out, err = runSetup(t, "cat over head", fmt.Sprintf(
		"exec unshare -m --propagation private sh -c 'mount --bind %s %s || exit %d; exec %s %s'",
		cat, head, setupFailed, head, plan))
	mustDeny(t, out, err, "cat bind-mounted over head in another mount namespace")
	// The same head, reached through a bind mount of its own in another
	// namespace, is still the host's file.
	out, err = runSetup(t, "head over head", fmt.Sprintf(
		"exec unshare -m --propagation private sh -c 'mount --bind %s %s || exit %d; exec %s %s'",
		head, head, setupFailed, head, plan))
	mustAllow(t, out, err, "the host's head bind-mounted over itself")

	h.stop()
	if n := exeDenials(t, h, head); n != 1 {
		t.Errorf("%d deny records say %s is not the host's file, want 1: %+v", n, head, h.audit.records(t))
	}
}

// Issue #17 case 15: a container whose image has its own /usr/bin/head
// (here a static busybox, in a root the container pivots into, as runtimes
// do) sees the protected file through a bind mount; its head prints
// /usr/bin/head but is not the host's, and must not be let in by a host
// rule.
func TestContainerImageExecutableIsNotTheHosts(t *testing.T) {
	busybox := requireContainerTools(t)
	if _, err := exec.LookPath("pivot_root"); err != nil {
		if testutil.InCI() {
			t.Fatal("pivot_root is missing (util-linux)")
		}
		t.Skip("pivot_root is missing (util-linux)")
	}
	id := "e1d0c0de" + strings.Repeat("0123456789abcdef", 3) + "01234567"
	cg := testCgroup(t, "system.slice/docker-"+id+".scope")
	head := realPath("head")
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)

	root := t.TempDir()
	copyFile(t, busybox, filepath.Join(root, head))
	for _, d := range []string{"etc/app", ".old"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	container := func(cmd string) (string, error) {
		return runSetup(t, "a container", fmt.Sprintf(
			"echo $$ > %s/cgroup.procs && exec unshare -m -p --fork --propagation private sh -c '"+
				"mount --bind %s %s && mount --bind %s %s/etc/app && cd %s && pivot_root . .old || exit %d; exec %s'",
			cg, root, root, h.path("secret"), root, root, setupFailed, cmd))
	}
	out, err := container(head + " /etc/app/plan.txt")
	mustDeny(t, out, err, "the container image's own head")
	out, err = run(t, "/", head, h.path("secret/plan.txt"))
	mustAllow(t, out, err, "the host's head")

	h.stop()
	if n := exeDenials(t, h, head); n != 1 {
		t.Errorf("%d deny records say %s is not the host's file, want 1: %+v", n, head, h.audit.records(t))
	}
}

// An allowed executable is the file installed at its path now: replaced by
// a rename (as package managers install), the new file is allowed at once,
// and a process still running the replaced one is not.
func TestExecutablesFollowTheHostFile(t *testing.T) { forBackends(t, testExecutablesFollowTheHostFile) }

func testExecutablesFollowTheHostFile(t *testing.T, backend string) {
	tool := filepath.Join(t.TempDir(), "bin", "tool")
	copyFile(t, realPath("head"), tool)
	h := startAgentOn(t, backend, func(fs string) string {
		return strings.Replace(policyFor(fs, ""), fmt.Sprintf("%q", realPath("head")), fmt.Sprintf("%q", tool), 1)
	}, nil)
	plan := h.path("secret/plan.txt")
	out, err := run(t, "/", tool, plan)
	mustAllow(t, out, err, "the installed tool")

	// A process of the installed tool, which opens the protected file
	// only after reading a line from its standard input.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := exec.CommandContext(ctx, tool, "-q", "-n", "1", "-", plan)
	stdin, err := old.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var oldOut strings.Builder
	old.Stdout, old.Stderr = &oldOut, &oldOut
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if old.ProcessState == nil {
			old.Process.Kill()
			old.Wait()
		}
	})

	// The upgrade: a new file renamed over the path.
	copyFile(t, realPath("head"), tool+".new")
	if err := os.Rename(tool+".new", tool); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "/", tool, plan)
	mustAllow(t, out, err, "the tool installed by the upgrade")

	io.WriteString(stdin, "go\n")
	stdin.Close()
	err = old.Wait()
	mustDeny(t, oldOut.String(), err, "a process still running the replaced tool")
	h.stop()
	if n := exeDenials(t, h, tool); n != 1 {
		t.Errorf("%d deny records say %s is not the host's file, want 1: %+v", n, tool, h.audit.records(t))
	}
}
