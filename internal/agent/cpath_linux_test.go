package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	id := "7e57c0de" + "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	base := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		base = "/sys/fs/cgroup"
	}
	cg := filepath.Join(base, "system.slice", "docker-"+id+".scope")
	testutil.RequireRoot(t)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatalf("cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })

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
	container := func(cmd string) (string, error) {
		script := fmt.Sprintf("echo $$ > %s/cgroup.procs && exec unshare -m -p --fork --propagation private sh -c 'mount --bind %s %s/etc/app && exec chroot %s /bin/busybox %s'",
			cg, h.path("secret"), root, root, cmd)
		return run(t, "/", "sh", "-c", script)
	}
	out, err := container("cat /etc/app/plan.txt")
	mustDeny(t, out, err, "a container opening /etc/app/plan.txt")
	out, err = container("cat /etc/app/../app/plan.txt")
	mustDeny(t, out, err, "the same file by a relative path inside the container")
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "the host opening the same file by its host path")
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
