package guest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

// TestGuestBoots boots the guest and runs the TestInGuest* tests there:
// what the BPF LSM tests will rely on.
func TestGuestBoots(t *testing.T) {
	guest.Run(t, guest.Options{
		Run:      "^TestInGuest",
		Verbose:  true,
		Programs: []string{"mkfs.ext4"},
		Timeout:  3 * time.Minute,
	})
}

func TestInGuestKernelRelease(t *testing.T) {
	guest.RequireGuest(t)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if got := unix.ByteSliceToString(u.Release[:]); got != guest.KernelRelease {
		t.Errorf("kernel release %q, want the pinned %q", got, guest.KernelRelease)
	}
}

func TestInGuestBPFLSMActive(t *testing.T) {
	guest.RequireGuest(t)
	b, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		t.Fatal(err)
	}
	lsms := strings.Split(strings.TrimSpace(string(b)), ",")
	if !strings.Contains(","+strings.Join(lsms, ",")+",", ",bpf,") {
		t.Errorf("bpf is not an active LSM: %q", b)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Errorf("no kernel BTF: %v", err)
	}
}

func TestInGuestMounts(t *testing.T) {
	guest.RequireGuest(t)
	for _, want := range []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/sys/kernel/security", "/sys/fs/bpf", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if err := unix.Statfs(want, &st); err != nil {
			t.Errorf("statfs %s: %v", want, err)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.procs"); err != nil {
		t.Errorf("cgroup2 is not mounted: %v", err)
	}
}

func TestInGuestTmpfs(t *testing.T) {
	guest.RequireGuest(t)
	dir := t.TempDir()
	if err := unix.Mount("test", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(dir, 0)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInGuestLoopExt4(t *testing.T) {
	guest.RequireGuest(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "ext4.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-F", img)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// busybox mount attaches a free loop device (the loop module is loaded).
	run(t, "mount", "-t", "ext4", "-o", "loop", img, mnt)
	defer run(t, "umount", "-d", mnt)
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		t.Errorf("%s: filesystem magic %#x, want ext4's", mnt, st.Type)
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInGuestBPFLSMAttach(t *testing.T) {
	guest.RequireGuest(t)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:       ebpf.LSM,
		AttachType: ebpf.AttachLSMMac,
		AttachTo:   "file_open",
		// Allow everything: return 0.
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		t.Fatalf("load LSM program: %v", err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		t.Fatalf("attach LSM program: %v", err)
	}
	defer l.Close()
	// Opens still work with the allow-all program attached.
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.Bytes())
	}
}
