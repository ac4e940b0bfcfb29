package nspath

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/testutil"
	"golang.org/x/sys/unix"
)

// requireBusybox returns a statically linked busybox (Debian package
// busybox-static) to build a container root from. Without one the test
// is skipped with the reason, or fails under CI=true.
func requireBusybox(t testing.TB) string {
	t.Helper()
	missing := func(reason string) {
		t.Helper()
		reason += "; install the Debian package busybox-static"
		if testutil.InCI() {
			t.Fatalf("CI=true but %s", reason)
		}
		t.Skip("skipping: " + reason)
	}
	p, err := exec.LookPath("busybox")
	if err != nil {
		missing("no busybox in PATH")
		return ""
	}
	f, err := elf.Open(p)
	if err != nil {
		missing(fmt.Sprintf("%s is not an ELF binary: %v", p, err))
		return ""
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			missing(p + " is dynamically linked")
		}
	}
	return p
}

// requireUnshare skips (fails in CI) without util-linux's unshare(1).
func requireUnshare(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("unshare")
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("CI=true but unshare(1) is missing (Debian package util-linux)")
		}
		t.Skip("skipping: unshare(1) is missing (Debian package util-linux)")
	}
	return p
}

func mustWrite(t testing.TB, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t testing.TB, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func statT(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return &st
}

// containerScript runs in new mount and PID namespaces (unshare) as PID 1
// there. It does what a runtime does: bind the rootfs (an overlay) onto
// itself, bind a volume into it at /etc/app, mount a tmpfs only it has at
// /run/private, pivot_root into the rootfs and drop the old root. Two
// more binds of the volume's filesystem make a trap: all of it at
// /mnt/node, and its /pods/other at the very path where the agent has the
// whole filesystem. Then it opens the secret on descriptor 3 and the
// trap's file on descriptor 4 (so the test can read the names the kernel
// gives open files from another namespace), says "ready" and sleeps.
const containerScript = `set -e
R="$1"; SRC="$2"; FS="$3"; BB="$R/bin/busybox"
"$BB" mount -o bind "$R" "$R"
"$BB" mount -o bind,ro "$SRC" "$R/etc/app"
"$BB" mount -t tmpfs -o size=64k private "$R/run/private"
echo only here > "$R/run/private/only-here.txt"
"$BB" mkdir -p "$R/mnt/node" "$R$FS"
"$BB" mount -o bind "$FS" "$R/mnt/node"
"$BB" mount -o bind "$FS/pods/other" "$R$FS"
cd "$R"
"$BB" pivot_root . .oldroot
cd /
/bin/busybox umount -l /.oldroot
exec 3</etc/app/secret.yaml
exec 4<"$FS/hidden.txt"
echo ready
exec /bin/busybox sleep 600
`

// startContainer starts script (containerScript, chrootScript) with
// arguments rootfs and args, and returns the PID (in the test's
// PID namespace) of the process inside the namespaces once it is ready.
// The process and unshare are killed by PID in t.Cleanup.
func startContainer(t *testing.T, unshare, rootfs, script string, args ...string) int {
	t.Helper()
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	argv := append([]string{"--mount", "--pid", "--fork", "--propagation", "private", "--kill-child",
		filepath.Join(rootfs, "bin/busybox"), "sh", "-c", script, "sh", rootfs}, args...)
	cmd := exec.Command(unshare, argv...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", unshare, err)
	}
	child := 0
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if child > 0 {
			if err := syscall.Kill(child, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				t.Errorf("kill container pid %d: %v", child, err)
			}
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			msg, _ := os.ReadFile(stderr.Name())
			t.Fatalf("container did not start: %v; stderr: %s", err, msg)
		}
	case <-time.After(10 * time.Second):
		msg, _ := os.ReadFile(stderr.Name())
		t.Fatalf("container not ready after 10s; stderr: %s", msg)
	}
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	b, err := os.ReadFile(children)
	if err != nil {
		t.Fatalf("find the container's pid: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("%s = %q, want one pid", children, b)
	}
	if child, err = strconv.Atoi(f[0]); err != nil {
		t.Fatal(err)
	}
	return child
}

// TestLiveContainer builds a container the way runtimes do (overlay root
// mounted in the agent's namespace, pivot_root, a volume bind, a private
// tmpfs) and checks both directions against it.
func TestLiveContainer(t *testing.T) {
	testutil.RequireRoot(t)
	busybox := requireBusybox(t)
	unshare := requireUnshare(t)
	testutil.CheckFDLeaks(t)

	// The rootfs: an overlay on one tmpfs, as /var/lib/docker/overlay2/ID/merged.
	layers := testutil.MountTmpfs(t)
	lower, upper, work, merged := filepath.Join(layers, "lower"), filepath.Join(layers, "upper"), filepath.Join(layers, "work"), filepath.Join(layers, "merged")
	copyFile(t, busybox, filepath.Join(lower, "bin/busybox"), 0o755)
	for _, d := range []string{"etc/app", "run/private", ".oldroot", upper, work, merged} {
		if !filepath.IsAbs(d) {
			d = filepath.Join(lower, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustSymlink(t, "/etc/app/secret.yaml", filepath.Join(lower, "etc/abs"))
	mustSymlink(t, "../../../../../../../etc/app/secret.yaml", filepath.Join(lower, "etc/escape"))
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount overlay %s: %v", merged, err)
			}
		}
	})
	mustWrite(t, filepath.Join(merged, "etc/hostname"), "box\n") // lands in upper

	// The volume: a Kubernetes secret volume with the kubelet's layout.
	volfs := testutil.MountTmpfs(t)
	volume := filepath.Join(volfs, "pods/7d2c/volumes/kubernetes.io~secret/app")
	const version = "..2026_11_26_21_30_00.123456789"
	hostSecret := filepath.Join(volume, "secret.yaml")
	mustWrite(t, hostSecret, "password: hunter2\n")
	mustWrite(t, filepath.Join(volume, version, "config.yaml"), "level: debug\n")
	mustSymlink(t, version, filepath.Join(volume, "..data"))
	mustSymlink(t, "..data/config.yaml", filepath.Join(volume, "config.yaml"))
	trapFile := filepath.Join(volfs, "pods/other/hidden.txt")
	mustWrite(t, trapFile, "bound at its own host path\n")
	mustWrite(t, filepath.Join(volfs, "hidden.txt"), "a different file\n")
	unbound := filepath.Join(layers, "unbound.txt") // the layers' tmpfs is not in the container
	mustWrite(t, unbound, "not bound\n")

	pid := startContainer(t, unshare, merged, containerScript, volume, volfs)
	r := New("/", Options{})

	containerPath := func(t *testing.T, hostPath string, dev uint64, want string) {
		t.Helper()
		got, ok, err := r.ContainerPath(pid, hostPath, dev)
		if err != nil {
			t.Fatalf("ContainerPath(%q): %v", hostPath, err)
		}
		if want == "" {
			if ok {
				t.Fatalf("ContainerPath(%q) = %q, want not visible", hostPath, got)
			}
			return
		}
		if !ok || got != want {
			t.Fatalf("ContainerPath(%q) = %q, %v; want %q", hostPath, got, ok, want)
		}
	}

	secretSt := statT(t, hostSecret)
	t.Run("volume file", func(t *testing.T) {
		containerPath(t, hostSecret, secretSt.Dev, "/etc/app/secret.yaml")
	})
	t.Run("volume file by its versioned name", func(t *testing.T) {
		p := filepath.Join(volume, version, "config.yaml")
		containerPath(t, p, statT(t, p).Dev, "/etc/app/"+version+"/config.yaml")
	})
	t.Run("file the container cannot see", func(t *testing.T) {
		containerPath(t, unbound, statT(t, unbound).Dev, "")
	})
	t.Run("overlay upper file through the host's overlay mount", func(t *testing.T) {
		p := filepath.Join(merged, "etc/hostname")
		containerPath(t, p, statT(t, p).Dev, "/etc/hostname")
	})
	t.Run("overlay lower file through the host's overlay mount", func(t *testing.T) {
		p := filepath.Join(merged, "bin/busybox")
		containerPath(t, p, statT(t, p).Dev, "/bin/busybox")
	})
	t.Run("overlay file through /proc/PID/root", func(t *testing.T) {
		p := fmt.Sprintf("/proc/%d/root/etc/hostname", pid)
		containerPath(t, p, statT(t, p).Dev, "/etc/hostname")
	})
	t.Run("readlink of the container's open descriptor", func(t *testing.T) {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the agent reads the container's fd 3 as %q", link)
		containerPath(t, link, secretSt.Dev, "/etc/app/secret.yaml")
	})
	t.Run("readlink that also names another file in the agent's view", func(t *testing.T) {
		// fd 4 is <volfs>/hidden.txt in the container (its bind of
		// /pods/other there); the agent has <volfs>/hidden.txt too, a
		// different file that the container sees at /mnt/node/hidden.txt.
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/4", pid))
		if err != nil {
			t.Fatal(err)
		}
		st := statT(t, trapFile)
		if link != filepath.Join(volfs, "hidden.txt") {
			t.Fatalf("readlink of fd 4 = %q, want %q", link, filepath.Join(volfs, "hidden.txt"))
		}
		got, ok, err := r.ContainerPath(pid, link, st.Dev)
		if err != nil || !ok || got != "/mnt/node/hidden.txt" {
			t.Fatalf("ContainerPath = %q, %v, %v; want the agent's reading /mnt/node/hidden.txt", got, ok, err)
		}
		got, ok, err = r.ContainerPathOf(pid, link, st.Dev, st.Ino)
		if err != nil || !ok || got != link {
			t.Fatalf("ContainerPathOf = %q, %v, %v; want %q", got, ok, err, link)
		}
		other := statT(t, filepath.Join(volfs, "hidden.txt"))
		got, ok, err = r.ContainerPathOf(pid, link, other.Dev, other.Ino)
		if err != nil || !ok || got != "/mnt/node/hidden.txt" {
			t.Fatalf("ContainerPathOf(the agent's file) = %q, %v, %v; want /mnt/node/hidden.txt", got, ok, err)
		}
		// A symlink planted where the agent's reading points, at the right
		// file, vouches for nothing: the check follows no symlink.
		if err := os.Remove(filepath.Join(volfs, "hidden.txt")); err != nil {
			t.Fatal(err)
		}
		mustSymlink(t, link, filepath.Join(volfs, "hidden.txt"))
		got, ok, err = r.ContainerPathOf(pid, link, st.Dev, st.Ino)
		if err != nil || !ok || got != link {
			t.Fatalf("ContainerPathOf with a planted symlink = %q, %v, %v; want %q", got, ok, err, link)
		}
	})
	t.Run("ContainerPathOf verifies the volume file", func(t *testing.T) {
		got, ok, err := r.ContainerPathOf(pid, hostSecret, secretSt.Dev, secretSt.Ino)
		if err != nil || !ok || got != "/etc/app/secret.yaml" {
			t.Fatalf("ContainerPathOf = %q, %v, %v", got, ok, err)
		}
		if got, ok, err := r.ContainerPathOf(pid, hostSecret, secretSt.Dev, secretSt.Ino+1); ok || err != nil {
			t.Fatalf("ContainerPathOf with a wrong inode = %q, %v, %v; want not found", got, ok, err)
		}
	})
	t.Run("a host process sees the host path", func(t *testing.T) {
		got, ok, err := r.ContainerPath(os.Getpid(), hostSecret, secretSt.Dev)
		if err != nil || !ok || got != hostSecret {
			t.Fatalf("ContainerPath(self) = %q, %v, %v; want %q", got, ok, err, hostSecret)
		}
	})

	hostPath := func(t *testing.T, in, wantCanon string, want *unix.Stat_t, wantPath string, viaProc bool) {
		t.Helper()
		f, err := r.HostPath(pid, in)
		if err != nil {
			t.Fatalf("HostPath(%q): %v", in, err)
		}
		if f.ContainerPath != wantCanon || f.Path != wantPath || f.ViaProcRoot != viaProc {
			t.Fatalf("HostPath(%q) = %+v; want container path %q, path %q, via /proc %v", in, f, wantCanon, wantPath, viaProc)
		}
		if f.Dev != want.Dev || f.Ino != want.Ino {
			t.Fatalf("HostPath(%q) = dev %d ino %d, want dev %d ino %d", in, f.Dev, f.Ino, want.Dev, want.Ino)
		}
		if got := statT(t, f.Path); got.Dev != f.Dev || got.Ino != f.Ino {
			t.Fatalf("%s is dev %d ino %d, not the file found (dev %d ino %d)", f.Path, got.Dev, got.Ino, f.Dev, f.Ino)
		}
	}
	t.Run("HostPath of the volume file", func(t *testing.T) {
		hostPath(t, "/etc/app/secret.yaml", "/etc/app/secret.yaml", secretSt, hostSecret, false)
	})
	t.Run("HostPath through ..data symlinks", func(t *testing.T) {
		p := filepath.Join(volume, version, "config.yaml")
		hostPath(t, "/etc/app/config.yaml", "/etc/app/"+version+"/config.yaml", statT(t, p), p, false)
	})
	t.Run("HostPath resolves an absolute symlink inside the root", func(t *testing.T) {
		hostPath(t, "/etc/abs", "/etc/app/secret.yaml", secretSt, hostSecret, false)
	})
	t.Run("HostPath keeps .. in a symlink inside the root", func(t *testing.T) {
		hostPath(t, "/etc/escape", "/etc/app/secret.yaml", secretSt, hostSecret, false)
	})
	t.Run("HostPath of an overlay file", func(t *testing.T) {
		p := filepath.Join(merged, "etc/hostname")
		hostPath(t, "/etc/hostname", "/etc/hostname", statT(t, p), p, false)
	})
	t.Run("HostPath of a file only the container's namespace has", func(t *testing.T) {
		via := fmt.Sprintf("/proc/%d/root/run/private/only-here.txt", pid)
		hostPath(t, "/run/private/only-here.txt", "/run/private/only-here.txt", statT(t, via), via, true)
		containerPath(t, via, statT(t, via).Dev, "/run/private/only-here.txt")
	})
}

// chrootScript is a container without pivot_root: a bind of the volume
// into a plain directory, then chroot(2) into it. The process's mountinfo
// then lists /etc/app but no mount at "/".
const chrootScript = `set -e
R="$1"; SRC="$2"; BB="$R/bin/busybox"
"$BB" mount -o bind,ro "$SRC" "$R/etc/app"
exec "$BB" chroot "$R" /bin/busybox sh -c 'echo ready; exec /bin/busybox sleep 600'
`

// TestLiveChroot checks a process chrooted into a plain directory of a
// tmpfs, in a mount namespace of its own: the files of its root come from
// the root directory the agent finds for it.
func TestLiveChroot(t *testing.T) {
	testutil.RequireRoot(t)
	busybox := requireBusybox(t)
	unshare := requireUnshare(t)
	testutil.CheckFDLeaks(t)

	fsDir := testutil.MountTmpfs(t)
	jail := filepath.Join(fsDir, "jail")
	copyFile(t, busybox, filepath.Join(jail, "bin/busybox"), 0o755)
	if err := os.MkdirAll(filepath.Join(jail, "etc/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(jail, "etc/motd"), "in the jail\n")
	outside := filepath.Join(fsDir, "outside.txt")
	mustWrite(t, outside, "next to the jail\n")
	volume := filepath.Join(fsDir, "volume")
	hostSecret := filepath.Join(volume, "secret.yaml")
	mustWrite(t, hostSecret, "password: hunter2\n")

	pid := startContainer(t, unshare, jail, chrootScript, volume)
	r := New("/", Options{})
	for _, tc := range []struct{ hostPath, want string }{
		{filepath.Join(jail, "etc/motd"), "/etc/motd"},
		{filepath.Join(jail, "bin/busybox"), "/bin/busybox"},
		{jail, "/"},
		{hostSecret, "/etc/app/secret.yaml"},
		{outside, ""},
	} {
		st := statT(t, tc.hostPath)
		got, ok, err := r.ContainerPath(pid, tc.hostPath, st.Dev)
		if err != nil || ok != (tc.want != "") || got != tc.want {
			t.Errorf("ContainerPath(%q) = %q, %v, %v; want %q", tc.hostPath, got, ok, err, tc.want)
		}
		if tc.want == "" {
			continue
		}
		if got, ok, err := r.ContainerPathOf(pid, tc.hostPath, st.Dev, st.Ino); err != nil || !ok || got != tc.want {
			t.Errorf("ContainerPathOf(%q) = %q, %v, %v; want %q", tc.hostPath, got, ok, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/etc/motd", filepath.Join(jail, "etc/motd")},
		{"/etc/app/secret.yaml", hostSecret},
	} {
		f, err := r.HostPath(pid, tc.in)
		if err != nil || f.Path != tc.want || f.ViaProcRoot {
			t.Errorf("HostPath(%q) = %+v, %v; want %q", tc.in, f, err, tc.want)
		}
	}
}
