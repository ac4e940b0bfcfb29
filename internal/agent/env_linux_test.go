package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/config"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestHypervisorProcessesMayOpenDiskImages(t *testing.T) {
	listed := filepath.Join(t.TempDir(), "bin", "qemu-img")
	impostor := filepath.Join(t.TempDir(), "other", "qemu-img")
	copyFile(t, realPath("cat"), listed)
	copyFile(t, realPath("cat"), impostor)
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, func(c *config.Config) {
		c.HypervisorExemption.Executables = []string{listed}
	})
	if err := os.WriteFile(h.path("secret/vm.qcow2"), []byte("QFI\xfb"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "/", listed, h.path("secret/vm.qcow2"))
	mustAllow(t, out, err, "a hypervisor process opening a disk image")
	out, err = run(t, "/", listed, h.path("secret/plan.txt"))
	mustDeny(t, out, err, "a hypervisor process opening a document")
	out, err = run(t, "/", impostor, h.path("secret/vm.qcow2"))
	mustDeny(t, out, err, "a program merely named like a hypervisor process")
	// Replacing the listed file changes its identity: the running copy
	// of the old one is no longer exempt.
	moved := listed + ".old"
	if err := os.Rename(listed, moved); err != nil {
		t.Fatal(err)
	}
	copyFile(t, realPath("cat"), listed)
	out, err = run(t, "/", moved, h.path("secret/vm.qcow2"))
	mustDeny(t, out, err, "the old file once the listed path names another")
	h.stop()
	for _, r := range h.audit.records(t) {
		if r.Exe == listed && strings.HasSuffix(r.Path, ".qcow2") {
			t.Errorf("an exempt open was audited: %+v", r)
		}
	}
	if n := h.a.stats.exempt.Load(); n != 1 {
		t.Errorf("%d exemptions counted, want 1", n)
	}
}

func TestPolicyOnAMountThatAppearsLater(t *testing.T) {
	forBackends(t, testPolicyOnAMountThatAppearsLater)
}

// testPolicyOnAMountThatAppearsLater: the protected directory does not
// exist at start, a filesystem is mounted where it will be, and it is made
// there; the files in it are protected once it exists.
func testPolicyOnAMountThatAppearsLater(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string {
		return strings.Replace(policyFor(fs, ""), fs+"/secret/**", fs+"/later/secret/**", 1)
	}, nil)
	later := h.path("later")
	if err := os.Mkdir(later, 0o755); err != nil {
		t.Fatal(err)
	}
	// Long enough for the agent to have seen the parent made before the
	// filesystem is mounted on it: the order that lost the protection
	// (the agent went on watching the shadowed directory).
	time.Sleep(500 * time.Millisecond)
	if out, err := run(t, "/", "mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", later); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { run(t, "/", "umount", "-l", later) })
	if err := os.MkdirAll(filepath.Join(later, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(later, "secret", "x.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := run(t, "/", "cat", filepath.Join(later, "secret", "x.txt"))
		return err != nil
	}, "a file on a filesystem mounted after start to be protected")
	out, err := run(t, "/", "head", filepath.Join(later, "secret", "x.txt"))
	mustAllow(t, out, err, "head on the new mount")
}

// TestContainerSelector puts a client process into a cgroup named as
// Docker names its containers, and checks that a rule selecting that
// container by ID decides for it.
func TestContainerSelector(t *testing.T) {
	id := "5d3f0c2a9b8e7f6a1d4c3b2a5e6f7d8c9b0a1e2f3d4c5b6a7e8f9d0c1b2a3e4f"
	cg := testCgroup(t, "system.slice/docker-"+id+".scope")
	h := startAgent(t, func(fs string) string {
		return policyFor(fs, fmt.Sprintf(`    - name: this-container
      operations: [open]
      subjects: {container: {runtimes: [docker], ids: ["%s"]}}
      effect: audit
`, id[:12]))
	}, nil)
	inCgroup := func(cmd string) (string, error) {
		return run(t, "/", "sh", "-c", "echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec "+cmd)
	}
	out, err := inCgroup("cat " + h.path("secret/plan.txt"))
	mustAllow(t, out, err, "cat in the selected container")
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat on the host")
	h.stop()
	var inside, host int
	for _, r := range h.audit.records(t) {
		switch r.Decision {
		case "audit":
			inside++
			if r.ContainerID != id || r.Runtime != "docker" || r.Rule != "this-container" {
				t.Errorf("the container's record: %+v", r)
			}
		case "deny":
			host++
			if r.ContainerID != "" {
				t.Errorf("the host process was recorded in a container: %+v", r)
			}
		}
	}
	if inside != 1 || host != 1 {
		t.Errorf("%d container records and %d host records, want 1 and 1", inside, host)
	}
}
