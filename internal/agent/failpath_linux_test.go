package agent

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// fileSHA256 is the policy form of a file's SHA-256.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

// policyByHash protects <fs>/secret/** so that only an executable whose
// SHA-256 is sum may open it.
func policyByHash(fs, sum string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-hash}
spec:
  files:
    paths: ["%s/secret/**"]
  rules:
    - name: head-by-hash
      operations: [open]
      subjects: {executableHashes: [%q]}
      effect: allow
    - name: others
      operations: [open]
      effect: deny
`, fs, sum)
}

// TestSlowHashIsNotAFailOpen: only the real head, by hash, may open; four
// sparse 511 MiB copies of head (which hash to something else, and take
// longer to hash than the deadline) open the secret at once with
// failureMode open. None of them may read it: the subject chose how long
// its hash takes, so it must not choose the failure path. The real head
// still reads it once its hash is known.
func TestSlowHashIsNotAFailOpen(t *testing.T) {
	head := realPath("head")
	h := startAgent(t, func(fs string) string {
		return policyByHash(fs, fileSHA256(t, head))
	}, func(c *config.Config) { c.FailureMode = config.FailOpen; c.Deadline = 20 * time.Millisecond })

	dir := t.TempDir()
	copies := make([]string, 4)
	for i := range copies {
		copies[i] = filepath.Join(dir, fmt.Sprintf("head%d", i))
		b, err := os.ReadFile(head)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(copies[i], b, 0o755); err != nil {
			t.Fatal(err)
		}
		// Sparse: costs no disk, but the agent reads 511 MiB of zeros to
		// hash it.
		if err := os.Truncate(copies[i], 511<<20); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	outs := make([]string, len(copies))
	errs := make([]error, len(copies))
	for i, c := range copies {
		wg.Go(func() { outs[i], errs[i] = run(t, "/", c, h.path("secret/plan.txt")) })
	}
	wg.Wait()
	for i := range copies {
		if strings.Contains(outs[i], "the plan") {
			t.Errorf("sparse copy %d of head read the secret: %q", i, outs[i])
		}
		mustDeny(t, outs[i], errs[i], fmt.Sprintf("sparse copy %d of head", i))
	}
	st := h.a.Status()
	for _, r := range failureNames {
		if n := st.Counters["failure."+r+".allowed"]; n != 0 {
			t.Errorf("%d events allowed by the %s failure path", n, r)
		}
	}
	for _, r := range h.audit.records(t) {
		if r.Decision == "failure" && r.Verdict != "deny" {
			t.Errorf("failure record with verdict %q: %+v", r.Verdict, r)
		}
	}
	// The real head: its hash is small and, once computed, cached; under
	// a loaded machine its first try may itself miss the 20 ms deadline
	// (and be denied), so it tries until the hash is known.
	waitFor(t, func() bool {
		out, err := run(t, "/", head, h.path("secret/plan.txt"))
		return err == nil && strings.Contains(out, "the plan")
	}, "the real head to read the secret by its hash")
}

// TestUnnamedFileIsDenied: a file on a marked filesystem whose path is
// longer than PATH_MAX cannot be named by the agent, so whether a policy
// covers it is unknown. It is denied, whatever the failure mode, and
// counted; before, it was an internal error answered by failureMode open.
func TestUnnamedFileIsDenied(t *testing.T) {
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") },
		func(c *config.Config) { c.FailureMode = config.FailOpen })
	for _, top := range []string{"secret", "public"} {
		dfd := deepDir(t, h.path(top), 4200)
		if err := writeAt(dfd, "deep.txt", "buried\n"); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("cat", "deep.txt")
		// The child changes into the directory through the descriptor it
		// inherited: no path that long can be passed to chdir.
		cmd.Dir = fmt.Sprintf("/proc/self/fd/%d", dfd)
		out, err := cmd.CombinedOutput()
		unix.Close(dfd)
		if strings.Contains(string(out), "buried") {
			t.Errorf("cat read a file under %s/ with a path over PATH_MAX", top)
		}
		mustDeny(t, string(out), err, "cat of a file with a path over PATH_MAX under "+top)
	}
	h.stop() // flush the audit log
	var named int
	for _, r := range h.audit.records(t) {
		if r.Decision != "failure" {
			continue
		}
		// The failure names its process, not "uid 0, no exe".
		if r.Reason == "unnamed-file" && r.Exe == realPath("cat") && r.UID == uint32(os.Getuid()) {
			named++
		} else {
			t.Errorf("failure record without its subject: %+v", r)
		}
	}
	if named < 2 {
		t.Errorf("%d unnamed-file failure records naming cat, want 2", named)
	}
	if n := h.a.Status().Counters["failure.unnamed-file"]; n < 2 {
		t.Errorf("failure.unnamed-file = %d, want at least 2", n)
	}
	if n := h.a.Status().Counters["failure.unnamed-file.allowed"]; n != 0 {
		t.Errorf("failure.unnamed-file.allowed = %d, want 0", n)
	}
}

// deepDir makes nested directories under root until the path is at least
// n bytes long and returns a descriptor of the deepest.
func deepDir(t *testing.T, root string, n int) int {
	t.Helper()
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("d", 200)
	for l := len(root); l < n; l += len(name) + 1 {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	// Not close-on-exec: the child inherits it to change into it.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	return fd
}

func writeAt(dfd int, name, text string) error {
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte(text))
	return err
}

// TestOldVersionThroughAKeptHandle: a process keeps an O_PATH handle on a
// protected file (which opens nothing, so the agent is not asked), an
// editor replaces the file by rename, and the process reopens the old
// version through /proc/self/fd. The old inode is no longer in the tree:
// the kernel names it "<path> (deleted)", and a policy by extension must
// still recognise it.
func TestOldVersionThroughAKeptHandle(t *testing.T) { forBackends(t, testOldVersionThroughAKeptHandle) }

func testOldVersionThroughAKeptHandle(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-extension}
spec:
  files:
    paths: ["%s/secret/*"]
    extensions: [txt]
  rules:
    - name: head-may-open
      operations: [open]
      subjects: {executables: [%q]}
      effect: allow
    - name: others
      operations: [open]
      effect: deny
`, fs, realPath("head"))
	}, nil)
	plan := h.path("secret/plan.txt")
	// The test process keeps the handle; cat reopens it by its
	// /proc/PID/fd name.
	fd, err := unix.Open(plan, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// The editor's save: a new file renamed over the old one.
	tmp := h.path("secret/.plan.txt.swp")
	if err := os.WriteFile(tmp, []byte("the new plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, plan); err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	out, err := run(t, "/", "cat", old)
	if strings.Contains(out, "the plan") {
		t.Errorf("cat read the replaced version through a kept handle: %q", out)
	}
	mustDeny(t, out, err, "cat of the old version through a kept O_PATH handle")
	out, err = run(t, "/", "head", old)
	mustAllow(t, out, err, "head of the old version")
	out, err = run(t, "/", "cat", plan)
	mustDeny(t, out, err, "cat of the new version")
}

// TestOpenBeforeStartIsReported: a descriptor of a protected file opened
// before the agent started was never decided, and the kernel does not
// raise read events for it; the agent cannot take it back, so it reports
// it: an audit record naming the process and what the policy would say,
// and a counter in status.
func TestOpenBeforeStartIsReported(t *testing.T) {
	var holder *exec.Cmd
	h := startAgent(t, func(fs string) string {
		// cat holds the secret open on descriptor 3 (the shell's redirection
		// opens it before any mark exists) and waits on its stdin.
		holder = exec.Command("sh", "-c", `exec 3<"$1"; exec cat`, "sh", filepath.Join(fs, "secret", "plan.txt"))
		stdin, err := holder.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close()
			_ = holder.Process.Kill()
			_ = holder.Wait()
		})
		// The shell has opened the file once cat echoes a line back.
		if _, err := stdin.Write([]byte("opened?\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := out.Read(make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
		return policyFor(fs, "")
	}, nil)
	pid := int32(holder.Process.Pid)
	var rec audit.Record
	waitFor(t, func() bool {
		for _, r := range h.audit.records(t) {
			if r.Decision == DecisionOpenBeforeStart && r.PID == pid {
				rec = r
				return true
			}
		}
		return false
	}, "the descriptor opened before the start to be reported")
	if rec.Path != h.path("secret/plan.txt") || rec.Exe != realPath("cat") || rec.Rule != "others-may-not-open" {
		t.Errorf("record %+v: want the secret, cat and the rule that would deny it", rec)
	}
	st := h.a.Status()
	if st.Counters["openBeforeStart"] < 1 || st.Counters["openBeforeStart.wouldDeny"] < 1 {
		t.Errorf("status counters %v: want the held descriptor counted", st.Counters)
	}
	// The public file held by nobody is not reported.
	for _, r := range h.audit.records(t) {
		if r.Decision == DecisionOpenBeforeStart && strings.Contains(r.Path, "public") {
			t.Errorf("uncovered file reported: %+v", r)
		}
	}
}

// TestExecGrantNotTakenBySibling: a file anyone may execute but nobody may
// open; one thread executes it while a sibling thread keeps opening it.
// The open the agent lets through for the exec must not be the sibling's.
func TestExecGrantNotTakenBySibling(t *testing.T) {
	h := startAgent(t, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: execute-only}
spec:
  files:
    paths: ["%s/secret/**"]
  rules:
    - name: anyone-may-exec
      operations: [exec]
      effect: allow
    - name: nobody-may-open
      operations: [open]
      effect: deny
`, fs)
	}, nil)
	bin := testutil.BuildC(t, "execrace", filepath.Join("testdata", "execrace.c"))
	data, err := os.ReadFile(realPath("true"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path("secret/true"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// Single-threaded, the exec works: its own open takes the grant.
	out, err := run(t, "/", h.path("secret/true"))
	mustAllow(t, out, err, "executing an execute-only file")
	for i := range 50 {
		out, err := run(t, "/", bin, h.path("secret/true"))
		if strings.Contains(out, "sibling opened the file") {
			for _, r := range h.audit.records(t) {
				t.Logf("%s %s %s %s %s pid=%d", r.Time.Format("15:04:05.000000"), r.Decision, r.Operation, r.Rule, r.Reason, r.PID)
			}
			t.Logf("%v", h.a.Status().Counters)
			t.Fatalf("run %d: a sibling thread opened an execute-only file with the exec's grant: %.40q", i, out)
		}
		// The exec itself may succeed (exit 0) or, with the sibling
		// opening beside it, be refused its open (exit 4); never exit 3.
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 4) {
			t.Fatalf("run %d: %v %q", i, err, out)
		}
	}
}

// testLogOut is where the test agents log: nowhere, unless
// DRMFILTER_TEST_LOG is set (then stderr, at debug level).
func testLogOut() io.Writer {
	if os.Getenv("DRMFILTER_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
