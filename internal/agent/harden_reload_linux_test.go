package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// mountTmpfsAt mounts a fresh tmpfs (4 MiB) on dir, making dir and its
// parents, and unmounts it when the test ends (lazily if it is busy). dir
// must be inside a tmpfs the test mounted itself (testutil.MountTmpfs).
func mountTmpfsAt(t *testing.T, dir string) {
	t.Helper()
	testutil.RequireRoot(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("drmfilter-test", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount tmpfs %s: %v", dir, err)
			}
		}
	})
}

// reloadBounded runs Reload and fails t if it has not returned within a
// minute: the bound only keeps a reload that blocks from hanging the
// test. release is called before giving up, so that the blocked reload
// can end and the agent stop.
func reloadBounded(t *testing.T, a *Agent, release func()) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Reload() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		release()
		<-done
		t.Fatal("Reload blocked for a minute")
		return nil
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFIFOInThePolicyDirectoryIsRejected (issue #17, case 13): a named
// pipe named like a policy in the policy directory used to block the
// reload in open(2) for ever, holding the reload lock, so that later
// reloads and the marking of new mounts stopped while status showed
// nothing wrong. The reload must fail at once, naming the pipe, with the
// previous policy in force; once the pipe is gone a reload works, and a
// filesystem mounted afterwards under a protected path is protected.
func TestFIFOInThePolicyDirectoryIsRejected(t *testing.T) {
	dir := t.TempDir()
	h := startAgent(t, func(fs string) string {
		text := policyFor(fs, "")
		writeFile(t, filepath.Join(dir, "policy.yaml"), text)
		return text
	}, func(c *config.Config) { c.Policies = []string{dir} })
	fifo := filepath.Join(dir, "zz-pipe.yaml")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Opening the pipe for reading and writing never blocks; closing it
	// lets a reader blocked in open(2) go (with end of file).
	release := func() {
		if fd, err := unix.Open(fifo, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
		}
	}
	t.Cleanup(release)

	err := reloadBounded(t, h.a, release)
	if !errors.Is(err, ErrPolicy) || !errors.Is(err, policy.ErrNotRegular) || !strings.Contains(err.Error(), fifo) {
		t.Fatalf("reload with a named pipe in the policy directory: %v; want an error naming %s", err, fifo)
	}
	st := h.a.Status()
	if st.Policy.Generation != 1 || st.ReloadFailure != 1 || !strings.Contains(st.Policy.Error, fifo) || st.Policy.ReloadInProgressSince != nil {
		t.Errorf("status after the rejected reload: generation %d, failures %d, error %q, reload in progress since %v",
			st.Policy.Generation, st.ReloadFailure, st.Policy.Error, st.Policy.ReloadInProgressSince)
	}
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat after the rejected reload")
	out, err = run(t, "/", "head", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "head after the rejected reload")

	// Without the pipe, a new policy (tail may open too) loads.
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "policy.yaml"), policyFor(h.fs, `    - name: tail-may-open
      operations: [open]
      subjects: {executables: [`+realPath("tail")+`]}
      effect: allow
`))
	if err := reloadBounded(t, h.a, func() {}); err != nil {
		t.Fatalf("reload after removing the pipe: %v", err)
	}
	if st := h.a.Status(); st.Policy.Generation != 2 || st.Policy.Error != "" {
		t.Errorf("status after the good reload: generation %d, error %q", st.Policy.Generation, st.Policy.Error)
	}
	out, err = run(t, "/", "tail", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "tail after the good reload")

	// A filesystem mounted under the protected path now is marked.
	vol := h.path("secret/vol")
	mountTmpfsAt(t, vol)
	writeFile(t, filepath.Join(vol, "key.txt"), "key\n")
	waitFor(t, func() bool { return slices.Contains(h.a.Status().Marked, vol) }, "the new mount under the protected path to be marked")
	out, err = run(t, "/", "cat", filepath.Join(vol, "key.txt"))
	mustDeny(t, out, err, "cat on a mount made after the reloads")
	out, err = run(t, "/", "head", filepath.Join(vol, "key.txt"))
	mustAllow(t, out, err, "head on a mount made after the reloads")
}

// TestNewMountsAreMarkedDuringAStuckReload (issue #17, case 13): a reload
// whose policy source does not answer is reported in status, and while it
// hangs a filesystem mounted where the policy protects files is still
// marked (mark updates used to wait for the reload lock).
func TestNewMountsAreMarkedDuringAStuckReload(t *testing.T) {
	mine := filepath.Join(t.TempDir(), "policy.yaml")
	var stuck atomic.Bool
	gate := make(chan struct{})
	var openGate sync.Once
	unstick := func() { openGate.Do(func() { close(gate) }) }
	h := startAgent(t, func(fs string) string {
		text := strings.Replace(policyFor(fs, ""), fs+"/secret/**", fs+"/later/secret/**", 1)
		writeFile(t, mine, text)
		return text
	}, nil, func(o *Options) {
		o.PolicySource = func() ([]policy.Source, error) {
			if stuck.Load() {
				<-gate
			}
			return policy.ReadPaths([]string{mine})
		}
	})
	t.Cleanup(unstick)
	if st := h.a.Status(); st.Policy.ReloadInProgressSince != nil || st.Policy.ReloadStalled {
		t.Fatalf("a reload is reported before any: %+v", st.Policy)
	}

	stuck.Store(true)
	before := time.Now()
	done := make(chan error, 1)
	go func() { done <- h.a.Reload() }()
	waitFor(t, func() bool { return h.a.Status().Policy.ReloadInProgressSince != nil }, "status to report the reload in progress")
	if since := h.a.Status().Policy.ReloadInProgressSince; since == nil || since.Before(before.Add(-time.Second)) {
		t.Errorf("reload in progress since %v, started at %v", since, before)
	}

	later := h.path("later")
	mountTmpfsAt(t, later)
	if err := os.Mkdir(filepath.Join(later, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(later, "secret", "x.txt"), "x\n")
	waitFor(t, func() bool { return slices.Contains(h.a.Status().Marked, later) }, "a mount made during the stuck reload to be marked")
	out, err := run(t, "/", "cat", filepath.Join(later, "secret", "x.txt"))
	mustDeny(t, out, err, "cat on a mount made during the stuck reload")
	out, err = run(t, "/", "head", filepath.Join(later, "secret", "x.txt"))
	mustAllow(t, out, err, "head on a mount made during the stuck reload")

	unstick()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the reload, once its source answered: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the reload did not end within a minute of its source answering")
	}
	if st := h.a.Status(); st.Policy.ReloadInProgressSince != nil {
		t.Errorf("a reload is still reported after it ended: %+v", st.Policy)
	}
}

func TestReloadStatusStalledAfterAMinute(t *testing.T) {
	now := time.Now()
	if since, stalled := reloadStatus(0, now); since != nil || stalled {
		t.Errorf("no reload: %v %v", since, stalled)
	}
	start := now.Add(-10 * time.Second)
	if since, stalled := reloadStatus(start.UnixNano(), now); since == nil || !since.Equal(start) || stalled {
		t.Errorf("a reload of 10s: %v %v", since, stalled)
	}
	if _, stalled := reloadStatus(now.Add(-reloadStallAfter-time.Second).UnixNano(), now); !stalled {
		t.Error("a reload running past reloadStallAfter is not reported stalled")
	}
}

// secretsPolicy protects <fs>/pods/*/volumes/kubernetes.io~secret/**, as
// examples/kubernetes-secrets.yaml does under /var/lib/kubelet: only head
// may open.
func secretsPolicy(fs string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: secrets}
spec:
  files:
    paths: ["%s/pods/*/volumes/kubernetes.io~secret/**"]
  rules:
    - name: head-may-open
      operations: [open]
      subjects: {executables: [%q]}
      effect: allow
    - name: others-may-not-open
      operations: [open]
      effect: deny
`, fs, realPath("head"))
}

// TestSecretVolumesBelowAGlobPrefixAreMarked (issue #17, case 14): each
// Kubernetes secret volume is a tmpfs of its own mounted at
// /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~secret/<name>, below
// the literal prefix of the policy's glob; only the filesystem holding
// that prefix used to be marked, so the secrets were not protected at all.
// The test's tmpfs stands for /var/lib/kubelet; a pod's other volumes,
// which the glob cannot match, stay unmarked.
func TestSecretVolumesBelowAGlobPrefixAreMarked(t *testing.T) {
	const uid = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
	volume := func(fs, kind string) string {
		return filepath.Join(fs, "pods", uid, "volumes", kind, "tok")
	}
	mountVolumes := func(t *testing.T, fs string) {
		for _, kind := range []string{"kubernetes.io~empty-dir", "kubernetes.io~secret"} {
			v := volume(fs, kind)
			mountTmpfsAt(t, v)
			writeFile(t, filepath.Join(v, "token"), "s3cr3t\n")
		}
	}
	check := func(t *testing.T, h *harness) {
		secret, other := volume(h.fs, "kubernetes.io~secret"), volume(h.fs, "kubernetes.io~empty-dir")
		waitFor(t, func() bool { return slices.Contains(h.a.Status().Marked, secret) }, "the secret volume to be marked")
		out, err := run(t, "/", "cat", filepath.Join(secret, "token"))
		mustDeny(t, out, err, "cat of a secret volume's file")
		out, err = run(t, "/", "head", filepath.Join(secret, "token"))
		mustAllow(t, out, err, "head of a secret volume's file")
		if out != "s3cr3t\n" {
			t.Errorf("head printed %q", out)
		}
		out, err = run(t, "/", "cat", filepath.Join(other, "token"))
		mustAllow(t, out, err, "cat of another volume's file")
		if m := h.a.Status().Marked; slices.Contains(m, other) {
			t.Errorf("a volume the glob cannot match is marked: %v", m)
		}
	}
	t.Run("mounted before start", func(t *testing.T) {
		h := startAgent(t, func(fs string) string {
			mountVolumes(t, fs)
			return secretsPolicy(fs)
		}, nil)
		check(t, h)
	})
	t.Run("mounted after start", func(t *testing.T) {
		h := startAgent(t, secretsPolicy, nil)
		mountVolumes(t, h.fs)
		check(t, h)
	})
}
