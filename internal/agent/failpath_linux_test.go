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

	"github.com/drmfilter/drmfilter/internal/config"
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

// TestSlowHashIsNotAFailOpen: only the real head, by hash, may open; four
// sparse 511 MiB copies of head (which hash to something else, and take
// longer to hash than the deadline) open the secret at once with
// failureMode open. None of them may read it: the subject chose how long
// its hash takes, so it must not choose the failure path. The real head
// still reads it once its hash is known.
func TestSlowHashIsNotAFailOpen(t *testing.T) {
	head := realPath("head")
	h := startAgent(t, func(fs string) string {
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
`, fs, fileSHA256(t, head))
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
