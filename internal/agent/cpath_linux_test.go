package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// TestContainerPathPolicy builds a container the way runtimes do, with
// the test's own tools: a root filesystem holding a static busybox, a
// private mount namespace in which the protected directory is bind-mounted
// at /etc/app, a chroot, and a cgroup named like a Docker container. A
// policy written in container paths must decide for the file as the
// container sees it, and not for the host.
func TestContainerPathPolicy(t *testing.T) {
	busybox := requireContainerTools(t)
	id := "7e57c0de" + "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	cg := testCgroup(t, "system.slice/docker-"+id+".scope")

	var fs string
	h := startAgent(t, func(f string) string {
		fs = f
		return `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: app-secrets}
spec:
  files:
    containerPaths: ["/etc/app/**"]
  rules:
    - {name: no-container-may-open, operations: [open], subjects: {container: any}, effect: deny}
`
	}, func(c *config.Config) {
		// Container paths can be anywhere on the host: keep the agent to
		// the test's own filesystem.
		c.MarkOnly = []string{fs}
	})

	root := busyboxRoot(t, busybox)
	container := func(cmd string) (string, error) { return inContainer(t, cg, root, h.path("secret"), cmd) }
	out, err := container("cat /etc/app/plan.txt")
	mustDeny(t, out, err, "a container opening /etc/app/plan.txt")
	out, err = container("cat /etc/app/../app/plan.txt")
	mustDeny(t, out, err, "the same file by a relative path inside the container")
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "the host opening the same file by its host path")
	// For the host the file is not covered at all: counted so, and not in
	// the identity index (which would make every host open of it go
	// through a full decision).
	waitFor(t, func() bool { return h.a.Status().Counters["open.uncovered"] >= 1 }, "the host's open to be counted as not covered")
	if c := h.a.Status().Counters; c["open.allow"] != 0 {
		t.Errorf("the host's open was counted as a covered, allowed open: %v allowed", c["open.allow"])
	}
	h.stop()
	found := false
	for _, r := range h.audit.records(t) {
		if r.Decision == "deny" {
			found = true
			if r.ContainerPath != "/etc/app/plan.txt" || r.ContainerID != id || r.Runtime != "docker" {
				t.Errorf("deny record: %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no deny record: %+v", h.audit.records(t))
	}
}

// busyboxRoot makes a container root filesystem holding a static busybox.
func busyboxRoot(t *testing.T, busybox string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc/app", "proc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// inContainer runs busybox cmd as a container would: in cgroup cg, in its
// own mount and PID namespaces, with volume bind-mounted at /etc/app, and
// root as its root directory.
func inContainer(t *testing.T, cg, root, volume, cmd string) (string, error) {
	t.Helper()
	script := fmt.Sprintf("echo $$ > %s/cgroup.procs && exec unshare -m -p --fork --propagation private sh -c 'mount --bind %s %s/etc/app && exec chroot %s /bin/busybox %s'",
		cg, volume, root, root, cmd)
	return run(t, "/", "sh", "-c", script)
}

func requireContainerTools(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		if testutil.InCI() {
			t.Fatal("busybox is missing (Debian package busybox-static)")
		}
		t.Skip("busybox is missing (Debian package busybox-static)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		if testutil.InCI() {
			t.Fatal("unshare is missing")
		}
		t.Skip("unshare is missing")
	}
	return busybox
}

// TestPodContainerEndToEnd: a container made by the test, in a cgroup of a
// Kubernetes pod that a CRI runtime describes, opens a file by its
// container path; a policy by namespace, labels and container path decides,
// and the audit record names the container, the pod and both paths.
func TestPodContainerEndToEnd(t *testing.T) {
	busybox := requireContainerTools(t)
	id := strings.Repeat("abcd", 16)
	cg := podCgroup(t, id)
	sock := serveFakeCRI(t, &fakeCRI{containerID: id, sandboxID: strings.Repeat("5b", 32)})
	other := strings.Repeat("0f", 32)
	otherCg := testCgroup(t, "system.slice/docker-"+other+".scope")
	var fs string
	h := startAgent(t, func(f string) string {
		fs = f
		return `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: pod-secrets}
spec:
  files: {containerPaths: ["/etc/app/**"]}
  rules:
    - name: payments-api
      operations: [open]
      # container: any as well, to be more specific than other-containers
      # (deny would win at equal specificity).
      subjects: {container: any, kubernetes: {namespaces: [payments], podLabels: {matchLabels: {app: payments-api}}}}
      effect: audit
    - {name: other-containers, operations: [open], subjects: {container: any}, effect: deny}
`
	}, func(c *config.Config) {
		c.MarkOnly = []string{fs}
		c.CRI.Endpoints = []string{sock}
	})
	root := busyboxRoot(t, busybox)
	waitFor(t, func() bool {
		_, err := inContainer(t, cg, root, h.path("secret"), "cat /etc/app/plan.txt")
		return err == nil
	}, "the payments pod's container to be allowed")
	out, err := inContainer(t, otherCg, root, h.path("secret"), "cat /etc/app/plan.txt")
	mustDeny(t, out, err, "a container outside the pod")
	h.stop()
	var podRec, otherRec bool
	for _, r := range h.audit.records(t) {
		switch {
		case r.Decision == "audit" && r.Rule == "payments-api":
			podRec = true
			if r.Pod != "payments/api-0" || r.ContainerID != id || r.ContainerPath != "/etc/app/plan.txt" || r.Path == "" {
				t.Errorf("the pod's record: %+v", r)
			}
		case r.Decision == "deny" && r.ContainerID == other:
			otherRec = true
			if r.ContainerPath != "/etc/app/plan.txt" || r.Pod != "" {
				t.Errorf("the other container's record: %+v", r)
			}
		}
	}
	if !podRec || !otherRec {
		t.Errorf("records: pod %v, other container %v among %d records", podRec, otherRec, len(h.audit.records(t)))
	}
}
