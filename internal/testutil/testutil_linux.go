package testutil

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireFanotify skips t unless this process can create a fanotify group
// with permission events (FAN_CLASS_CONTENT): root, and a kernel built with
// CONFIG_FANOTIFY_ACCESS_PERMISSIONS. In CI it fails t instead.
func RequireFanotify(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC, unix.O_RDONLY)
	switch {
	case err == nil:
		unix.Close(fd)
	case errors.Is(err, unix.EINVAL):
		unavailable(t, "kernel lacks fanotify permission events (CONFIG_FANOTIFY_ACCESS_PERMISSIONS)")
	case errors.Is(err, unix.ENOSYS):
		unavailable(t, "kernel lacks fanotify (CONFIG_FANOTIFY)")
	case errors.Is(err, unix.EPERM):
		unavailable(t, "fanotify_init needs CAP_SYS_ADMIN")
	default:
		unavailable(t, fmt.Sprintf("fanotify_init: %v", err))
	}
}

// MountTmpfs mounts a fresh, private tmpfs (4 MiB) on a directory in
// t.TempDir() and returns its path. It is unmounted in t.Cleanup, lazily
// (MNT_DETACH) if something still uses it. The mount is the only thing a
// fanotify test may mark. Needs root.
func MountTmpfs(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
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
	return dir
}

// OpenFDs lists this process's open descriptors with what they point to
// (the readlink of /proc/self/fd/N), leaving out the descriptor used to
// list them.
func OpenFDs() (map[int]string, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list fds: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("list fds: %w", err)
	}
	fds := make(map[int]string, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || uintptr(fd) == d.Fd() {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + name)
		if err != nil {
			continue // closed meanwhile
		}
		fds[fd] = target
	}
	return fds, nil
}

// warmUp makes the Go runtime open the descriptors it opens once per
// process (the netpoller's epoll and eventfd), so they are in the baseline
// and not reported as leaks.
func warmUp() {
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
}

// CheckFDLeaks records the open descriptors now and, in t.Cleanup, fails t
// if more are open at its end. Do not use it in parallel tests: other
// tests' descriptors would count.
func CheckFDLeaks(t testing.TB) {
	t.Helper()
	warmUp()
	before, err := OpenFDs()
	if err != nil {
		t.Fatalf("fd leak check: %v", err)
	}
	t.Cleanup(func() {
		after, err := OpenFDs()
		if err != nil {
			t.Errorf("fd leak check: %v", err)
			return
		}
		if l := leaked(before, after); len(l) > 0 {
			t.Errorf("leaked %d descriptor(s):\n\t%s", len(l), strings.Join(l, "\n\t"))
		}
	})
}

// RunWithFDCheck runs the tests of m and then fails the run if descriptors
// opened during it are still open. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunWithFDCheck(m)) }
func RunWithFDCheck(m *testing.M) int {
	warmUp()
	before, err := OpenFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	code := m.Run()
	after, err := OpenFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fd leak check:", err)
		return 1
	}
	// The testing package may leave the files of -test.cpuprofile and the
	// like open; they are not the tests' leaks.
	for _, name := range []string{"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace", "test.coverprofile"} {
		f := flag.Lookup(name)
		if f == nil || f.Value.String() == "" {
			continue
		}
		out := f.Value.String()
		if d := flag.Lookup("test.outputdir"); d != nil && d.Value.String() != "" && !filepath.IsAbs(out) {
			out = filepath.Join(d.Value.String(), out)
		}
		if abs, err := filepath.Abs(out); err == nil {
			for fd, target := range after {
				if target == abs {
					delete(after, fd)
				}
			}
		}
	}
	if l := leaked(before, after); len(l) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d descriptor(s) leaked by the tests:\n\t%s\n", len(l), strings.Join(l, "\n\t"))
		if code == 0 {
			code = 1
		}
	}
	return code
}
