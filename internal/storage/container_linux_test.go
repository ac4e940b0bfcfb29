//go:build linux

package storage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// helperEnv selects a helper mode when the test binary re-executes itself.
const helperEnv = "DRMFILTER_STORAGE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "container-view" {
		if err := containerView(os.Getenv("DRMFILTER_STORAGE_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, "container view:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// containerView runs in a re-executed test binary that is already in a
// private mount namespace of its own (CLONE_NEWNS). It builds what a
// container engine builds: an overlay root, /proc, and a file bind-mounted
// onto /etc/hosts; then it chroots into it and prints its own mountinfo,
// which is what a process in the container would read.
func containerView(dir string) error {
	merged := filepath.Join(dir, "merged")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	if err := unix.Mount("proc", filepath.Join(merged, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	if err := unix.Mount(filepath.Join(dir, "hosts"), filepath.Join(merged, "etc", "hosts"), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind hosts: %w", err)
	}
	if err := unix.Chroot(merged); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

// As root: the mountinfo a process inside a container really reads (its
// own mount namespace, an overlay root, paths relative to its root) parses,
// and the table answers as the container sees its files.
func TestLiveContainerMountNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	for _, d := range []string{"lower/etc", "lower/proc", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"lower/etc/hosts": "", "lower/etc/passwd": "root:x:0:0::/root:/bin/sh\n", "hosts": "127.0.0.1 localhost\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=container-view", "DRMFILTER_STORAGE_TEST_DIR="+dir)
	// Go makes the new namespace's mounts private (MS_REC|MS_PRIVATE on /),
	// so nothing the helper mounts reaches this namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "mount overlay") && !testutil.InCI() {
			t.Skipf("skipping: overlayfs not usable here: %s", stderr.String())
		}
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}

	t.Logf("mountinfo inside the container:\n%s", out)
	ms, err := mountinfo.Parse(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("container mountinfo: %v\n%s", err, out)
	}
	if len(ms) != 3 {
		t.Errorf("the container should see exactly its 3 mounts, got %d:\n%s", len(ms), out)
	}
	s := NewMounts("/", ms)
	tests := []struct {
		path, mountPoint string
		class            Class
		bind             bool
	}{
		{"/etc/passwd", "/", ClassOverlay, false},
		{"/usr/bin/env", "/", ClassOverlay, false},
		{"/proc/self/status", "/proc", ClassPseudo, false},
		{"/etc/hosts", "/etc/hosts", ClassLocal, true},
	}
	for _, tt := range tests {
		m, info := s.Lookup(tt.path)
		if m.MountPoint != tt.mountPoint || info.Class != tt.class || m.BindSubtree() != tt.bind {
			t.Errorf("container Lookup(%s) = %s %s bind=%v (%s), want %s %s bind=%v",
				tt.path, m.MountPoint, info.Class, m.BindSubtree(), info.Reason, tt.mountPoint, tt.class, tt.bind)
		}
	}
	m, _ := s.Lookup("/etc/hosts")
	if want := filepath.Join(dir, "hosts"); !strings.HasSuffix(want, m.Root) {
		t.Errorf("bind root %q should be the host path of the file (%s) within its filesystem", m.Root, want)
	}
	// Nothing of the helper's mounts leaked into this namespace.
	host, err := LoadMounts("/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := host.Lookup(filepath.Join(dir, "merged", "etc")); m.FSType == "overlay" {
		t.Errorf("overlay leaked into the test's namespace: %+v", m)
	}
}
