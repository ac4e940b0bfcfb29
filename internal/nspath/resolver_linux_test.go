package nspath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixtureRoot builds a fake root: proc/self is the docker host view,
// proc/42 the container, proc/7 a host process that shares the agent's
// namespace and root (symlinks to self's), and proc/42/root a small tree
// with configmap-style symlinks.
func fixtureRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	read := func(fixture, file string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", fixture, file+".mountinfo"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write("proc/self/mountinfo", read("docker", "host"))
	link("mnt:[4026531841]", "proc/self/ns/mnt")
	write("proc/self/root/.keep", "")
	link("../self/ns", "proc/7/ns")
	link("../self/root", "proc/7/root")
	write("proc/7/mountinfo", read("docker", "host"))
	write("proc/42/mountinfo", read("docker", "proc"))
	link("mnt:[4026532710]", "proc/42/ns/mnt")
	r := "proc/42/root/"
	write(r+"etc/app/secret.yaml", "s3cret\n")
	write(r+"etc/config/..2026_11_26_21_04_33.1/app.yaml", "a: 1\n")
	link("..2026_11_26_21_04_33.1", r+"etc/config/..data")
	link("..data/app.yaml", r+"etc/config/app.yaml")
	link("/etc/app/secret.yaml", r+"abs")
	link("../../../../../../etc/app/secret.yaml", r+"escape")
	link("/", r+"toroot")
	link("loop2", r+"loop1")
	link("loop1", r+"loop2")
	link("/etc/passwd", r+"dangling")
	return root
}

func dev(major, minor uint32) uint64 { return unix.Mkdev(major, minor) }

func TestContainerPathFixture(t *testing.T) {
	root := fixtureRoot(t)
	r := New(root, Options{SelfRoot: root})
	cases := []struct {
		name, path string
		dev        uint64
		want       string
		ok         bool
	}{
		{"through merged", dockerMerged + "/etc/passwd", dev(0, 115), "/etc/passwd", true},
		{"volume", "/var/lib/docker/volumes/pgdata/_data/x", dev(259, 2), "/data/x", true},
		{"via /proc/N/root", "/proc/42/root/etc/passwd", dev(0, 115), "/etc/passwd", true},
		{"via <root>/proc/N/root", root + "/proc/42/root/etc/hosts", dev(259, 2), "/etc/hosts", true},
		{"via /proc/N/root of a host process", "/proc/7/root/var/lib/docker/volumes/pgdata/_data/y", dev(259, 2), "/data/y", true},
		{"via /proc/self/root", "/proc/self/root" + dockerMerged + "/bin/sh", dev(0, 115), "/bin/sh", true},
		{"invisible", "/etc/shadow", dev(259, 2), "", false},
		// No /work/go.mod here on 259:2: the path is read as the
		// container's own (a readlink from its namespace).
		{"the container's own path of a bind", "/work/go.mod", dev(259, 2), "/work/go.mod", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := r.ContainerPath(42, tc.path, tc.dev)
			if err != nil || ok != tc.ok || got != tc.want {
				t.Fatalf("ContainerPath(42, %q) = %q, %v, %v; want %q, %v, nil", tc.path, got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

func TestContainerPathErrors(t *testing.T) {
	root := fixtureRoot(t)
	r := New(root, Options{SelfRoot: root})
	_, _, err := r.ContainerPath(43, "/etc/passwd", dev(0, 115))
	var e *Error
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &e) || e.PID != 43 || e.Op != "container path" {
		t.Errorf("gone process: err = %v, want *Error matching fs.ErrNotExist", err)
	}
	if _, _, err := r.ContainerPath(0, "/x", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("pid 0: err = %v, want ErrInvalid", err)
	}
	if _, _, err := r.ContainerPath(42, "x", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative path: err = %v, want ErrInvalid", err)
	}
	if _, err := r.HostPath(42, "etc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("HostPath relative: err = %v, want ErrInvalid", err)
	}
	if _, err := r.HostPath(-1, "/etc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("HostPath pid -1: err = %v, want ErrInvalid", err)
	}
	if _, err := r.Namespace(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Namespace(0): err = %v, want ErrInvalid", err)
	}
	// A mount table with garbage is refused, not half used.
	if err := os.WriteFile(filepath.Join(root, "proc/42/mountinfo"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Flush()
	if _, _, err := r.ContainerPath(42, "/x", 0); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("garbage mountinfo: err = %v, want malformed", err)
	}
}

func TestResolverCache(t *testing.T) {
	root := fixtureRoot(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r := New(root, Options{SelfRoot: root, TTL: time.Minute, RetryAfter: -1, Now: clock.now})
	const newVol = "/var/lib/docker/volumes/logs/_data/app.log"
	ask := func(want string, wantOK bool) {
		t.Helper()
		got, ok, err := r.ContainerPath(42, newVol, dev(259, 2))
		if err != nil || ok != wantOK || got != want {
			t.Fatalf("ContainerPath = %q, %v, %v; want %q, %v", got, ok, err, want, wantOK)
		}
	}
	ask("", false)
	// A volume is mounted: the cached table does not know it yet.
	mi := filepath.Join(root, "proc/42/mountinfo")
	b, err := os.ReadFile(mi)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "1121 1108 259:2 /var/lib/docker/volumes/logs/_data /logs rw,relatime - ext4 /dev/nvme0n1p2 rw\n"...)
	if err := os.WriteFile(mi, b, 0o644); err != nil {
		t.Fatal(err)
	}
	clock.advance(30 * time.Second)
	ask("", false)
	ns, err := r.Namespace(42)
	if err != nil {
		t.Fatal(err)
	}
	if ns != 4026532710 {
		t.Fatalf("Namespace(42) = %d, want 4026532710", ns)
	}
	r.Invalidate(ns)
	ask("/logs/app.log", true)

	// Expiry: the volume goes away, and is forgotten after the TTL.
	if err := os.WriteFile(mi, b[:len(b)-len("1121 1108 259:2 /var/lib/docker/volumes/logs/_data /logs rw,relatime - ext4 /dev/nvme0n1p2 rw\n")], 0o644); err != nil {
		t.Fatal(err)
	}
	clock.advance(59 * time.Second)
	ask("/logs/app.log", true)
	clock.advance(time.Second)
	ask("", false)
}

func TestResolverRetryAfter(t *testing.T) {
	root := fixtureRoot(t)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r := New(root, Options{SelfRoot: root, TTL: time.Hour, RetryAfter: time.Second, Now: clock.now})
	p := "/var/lib/docker/volumes/logs/_data/app.log"
	if _, ok, _ := r.ContainerPath(42, p, dev(259, 2)); ok {
		t.Fatal("visible before the mount")
	}
	mi := filepath.Join(root, "proc/42/mountinfo")
	f, err := os.OpenFile(mi, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("1121 1108 259:2 /var/lib/docker/volumes/logs/_data /logs rw,relatime - ext4 /dev/nvme0n1p2 rw\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Tables younger than RetryAfter are trusted for a miss.
	clock.advance(500 * time.Millisecond)
	if _, ok, _ := r.ContainerPath(42, p, dev(259, 2)); ok {
		t.Fatal("re-read a table younger than RetryAfter")
	}
	clock.advance(time.Second)
	if got, ok, err := r.ContainerPath(42, p, dev(259, 2)); !ok || got != "/logs/app.log" || err != nil {
		t.Fatalf("after RetryAfter: %q, %v, %v; want /logs/app.log", got, ok, err)
	}
}

func TestResolverSharesAgentView(t *testing.T) {
	root := fixtureRoot(t)
	r := New(root, Options{SelfRoot: root})
	// pid 7 has the agent's namespace and root: the answer is the path
	// itself, from the agent's own table.
	got, ok, err := r.ContainerPath(7, "/var/lib/docker/volumes/pgdata/_data/x", dev(259, 2))
	if err != nil || !ok || got != "/var/lib/docker/volumes/pgdata/_data/x" {
		t.Fatalf("host process: %q, %v, %v", got, ok, err)
	}
	self, err := r.selfView(0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.procView(7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v != self {
		t.Error("a process in the agent's view got a table of its own")
	}
	if len(r.views) != 0 {
		t.Errorf("%d views cached, want 0", len(r.views))
	}
}

func TestResolverEviction(t *testing.T) {
	root := fixtureRoot(t)
	for _, pid := range []string{"50", "51", "52"} {
		if err := os.MkdirAll(filepath.Join(root, "proc", pid, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("mnt:[40265330"+pid+"]", filepath.Join(root, "proc", pid, "ns/mnt")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../42/root", filepath.Join(root, "proc", pid, "root")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../42/mountinfo", filepath.Join(root, "proc", pid, "mountinfo")); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r := New(root, Options{SelfRoot: root, MaxNamespaces: 2, Now: clock.now})
	for _, pid := range []int{50, 51, 52} {
		clock.advance(time.Millisecond)
		if _, ok, err := r.ContainerPath(pid, dockerMerged+"/x", dev(0, 115)); !ok || err != nil {
			t.Fatalf("pid %d: %v, %v", pid, ok, err)
		}
	}
	if n := len(r.views); n != 2 {
		t.Fatalf("%d views cached, want 2", n)
	}
	ns50, _ := r.Namespace(50)
	for k := range r.views {
		if k.ns == ns50 {
			t.Error("the oldest view (pid 50) was kept")
		}
	}
}

func TestSplitProcRoot(t *testing.T) {
	r := New("/host", Options{})
	for _, tc := range []struct {
		in   string
		pid  int
		want string
	}{
		{"/proc/42/root/etc/x", 42, "/etc/x"},
		{"/proc/42/root", 42, "/"},
		{"/host/proc/42/root/etc/x", 42, "/etc/x"},
		{"/proc/self/root/etc/x", 0, "/etc/x"},
		{"/host/proc/self/root/etc/x", 0, "/host/proc/self/root/etc/x"},
		{"/proc/42/rootfs/x", 0, "/proc/42/rootfs/x"},
		{"/proc/42/cwd/x", 0, "/proc/42/cwd/x"},
		{"/proc/+42/root/x", 0, "/proc/+42/root/x"},
		{"/proc/0/root/x", 0, "/proc/0/root/x"},
		{"/proc/42/root/../../etc", 0, "/proc/etc"},
		{"/srv/proc/42/root/x", 0, "/srv/proc/42/root/x"},
	} {
		pid, p := r.splitProcRoot(tc.in)
		if pid != tc.pid || p != tc.want {
			t.Errorf("splitProcRoot(%q) = %d, %q; want %d, %q", tc.in, pid, p, tc.pid, tc.want)
		}
	}
}

func TestHostPathFixture(t *testing.T) {
	root := fixtureRoot(t)
	r := New(root, Options{SelfRoot: root})
	secret, err := os.Stat(filepath.Join(root, "proc/42/root/etc/app/secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, canon string }{
		{"/etc/app/secret.yaml", "/etc/app/secret.yaml"},
		{"/etc//app/./secret.yaml", "/etc/app/secret.yaml"},
		{"/abs", "/etc/app/secret.yaml"},
		{"/escape", "/etc/app/secret.yaml"},
		{"/../../etc/app/secret.yaml", "/etc/app/secret.yaml"},
		{"/toroot/toroot/etc/app/secret.yaml", "/etc/app/secret.yaml"},
		{"/etc/app/../app/secret.yaml", "/etc/app/secret.yaml"},
		{"/etc/config/app.yaml", "/etc/config/..2026_11_26_21_04_33.1/app.yaml"},
		{"/etc/config/..data/app.yaml", "/etc/config/..2026_11_26_21_04_33.1/app.yaml"},
		{"/etc/config/..data", "/etc/config/..2026_11_26_21_04_33.1"},
		{"/", "/"},
		{"/toroot", "/"},
		{"/etc/..", "/"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			f, err := r.HostPath(42, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if f.ContainerPath != tc.canon {
				t.Errorf("ContainerPath = %q, want %q", f.ContainerPath, tc.canon)
			}
			wantPath := filepath.Join(root, "proc/42/root", tc.canon)
			if f.Path != wantPath || !f.ViaProcRoot {
				t.Errorf("Path = %q (via proc root %v), want %q", f.Path, f.ViaProcRoot, wantPath)
			}
			st, err := os.Stat(f.Path)
			if err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); f.Ino != sys.Ino || f.Dev != sys.Dev {
				t.Errorf("inode %d does not match %s", f.Ino, f.Path)
			}
		})
	}
	f, err := r.HostPath(42, "/abs")
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(mustStat(t, f.Path), secret) || f.Mode.IsDir() {
		t.Errorf("/abs resolved to %+v, not the secret", f)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"/loop1", ErrTooManyLinks},
		{"/dangling", fs.ErrNotExist},
		{"/etc/app/secret.yaml/x", unix.ENOTDIR},
		{"/etc/app/secret.yaml/..", unix.ENOTDIR},
		{"/nope", fs.ErrNotExist},
	} {
		if _, err := r.HostPath(42, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("HostPath(%q): err = %v, want %v", tc.in, err, tc.want)
		}
	}
	if _, err := r.HostPath(43, "/"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("gone process: err = %v, want fs.ErrNotExist", err)
	}
}

func mustStat(t testing.TB, p string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestParseNsLink(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"mnt:[4026531841]", 4026531841, true},
		{"mnt:[18446744073709551615]", 18446744073709551615, true},
		{"mnt:[18446744073709551616]", 0, false},
		{"mnt:[]", 0, false},
		{"mnt:[12a]", 0, false},
		{"net:[4026531840]", 0, false},
		{"mnt:[1", 0, false},
		{"", 0, false},
	} {
		got, ok := parseNsLink([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseNsLink(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestResolverConcurrent runs lookups while tables expire, are dropped and
// reloaded; the race detector checks the cache's locking.
func TestResolverConcurrent(t *testing.T) {
	root := fixtureRoot(t)
	r := New(root, Options{SelfRoot: root, TTL: time.Microsecond, MaxNamespaces: 1})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				switch {
				case g == 0 && i%10 == 0:
					r.Flush()
				case g == 1 && i%10 == 0:
					r.Invalidate(4026532710)
				}
				got, ok, err := r.ContainerPath(42, dockerMerged+"/etc/passwd", dev(0, 115))
				if err != nil || !ok || got != "/etc/passwd" {
					t.Errorf("ContainerPath = %q, %v, %v", got, ok, err)
					return
				}
				if _, err := r.HostPath(42, "/etc/config/app.yaml"); err != nil {
					t.Errorf("HostPath: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestContainerPathFromAPod is the agent in a DaemonSet pod: its own view
// (kubernetes/agent) has the node under /host, the node's view is PID 1's,
// and mounts made on the node after the agent started are not in the
// agent's view at all.
func TestContainerPathFromAPod(t *testing.T) {
	root := t.TempDir()
	put := func(fixture, file, name string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", fixture, file+".mountinfo"))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(root, name), string(b))
	}
	put("kubernetes", "agent", "proc/self/mountinfo")
	put("kubernetes", "host", "proc/1/mountinfo")
	put("kubernetes", "proc", "proc/42/mountinfo")
	for pid, ns := range map[string]string{"self": "4026532900", "1": "4026531841", "42": "4026532710"} {
		if err := os.MkdirAll(filepath.Join(root, "proc", pid, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		mustSymlink(t, "mnt:["+ns+"]", filepath.Join(root, "proc", pid, "ns/mnt"))
		if err := os.MkdirAll(filepath.Join(root, "proc", pid, "root"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := New(root, Options{SelfRoot: root})
	for _, tc := range []struct {
		name, path string
		dev        uint64
		want       string
	}{
		{"mount that never reached the agent: node's view", podDir + "/volumes/kubernetes.io~secret/db-creds/password", dev(0, 312), "/etc/app/password"},
		{"mount that propagated to /host", "/host" + podDir + "/volumes/kubernetes.io~projected/kube-api-access-x7k2p/token", dev(0, 311), "/run/secrets/kubernetes.io/serviceaccount/token"},
		{"node file through /host", "/host" + podDir + "/etc-hosts", dev(259, 1), "/etc/hosts"},
		{"readlink from the app's own namespace", "/etc/config/" + cmVersion + "/log.yaml", dev(259, 1), "/etc/config/" + cmVersion + "/log.yaml"},
		// The agent's own /etc/hosts is another file than the app's, but
		// without its inode the path reads as the app's (the foreign
		// reading): ContainerPathOf settles it, see TestLiveContainer.
		{"ambiguous without the inode", "/etc/hosts", dev(259, 1), "/etc/hosts"},
		{"another pod's secret", "/var/lib/kubelet/pods/" + otherPodUID + "/volumes/kubernetes.io~secret/db-creds/password", dev(0, 313), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := r.ContainerPath(42, tc.path, tc.dev)
			if err != nil || ok != (tc.want != "") || got != tc.want {
				t.Fatalf("ContainerPath(%q) = %q, %v, %v; want %q", tc.path, got, ok, err, tc.want)
			}
		})
	}
	// The fixture's process root is empty: no reading can be verified.
	if got, ok, err := r.ContainerPathOf(42, "/etc/hosts", dev(259, 1), 1234); ok || err != nil {
		t.Errorf("ContainerPathOf = %q, %v, %v; want no verified answer", got, ok, err)
	}
}

// TestChrootRootMount is TestLiveChroot without root: a process chrooted
// into <tmp>/jail whose mountinfo lists only its bind at /data. The
// fixture's device numbers are those of the temporary directory, so that
// the readlink and statx of proc/60/root agree with the tables.
func TestChrootRootMount(t *testing.T) {
	root := t.TempDir()
	jail := filepath.Join(root, "jail")
	mustWrite(t, filepath.Join(jail, "etc/motd"), "in the jail\n")
	mustWrite(t, filepath.Join(jail, "vol/x"), "volume\n")
	mustWrite(t, filepath.Join(root, "outside"), "next to the jail\n")
	st := statT(t, root)
	mm := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	mustWrite(t, filepath.Join(root, "proc/self/mountinfo"), "1 1 "+mm+" / / rw - ext4 /dev/x rw\n")
	mustWrite(t, filepath.Join(root, "proc/60/mountinfo"), "5 4 "+mm+" "+jail+"/vol /data rw - ext4 /dev/x rw\n")
	if err := os.MkdirAll(filepath.Join(root, "proc/60/ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/self/ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "mnt:[4026532060]", filepath.Join(root, "proc/60/ns/mnt"))
	mustSymlink(t, jail, filepath.Join(root, "proc/60/root"))
	mustSymlink(t, "mnt:[4026531841]", filepath.Join(root, "proc/self/ns/mnt"))
	mustSymlink(t, root, filepath.Join(root, "proc/self/root"))

	r := New(root, Options{SelfRoot: root})
	for _, tc := range []struct{ hostPath, want string }{
		{filepath.Join(jail, "etc/motd"), "/etc/motd"},
		{jail, "/"},
		{filepath.Join(jail, "vol/x"), "/data/x"},
		{filepath.Join(root, "outside"), ""},
	} {
		got, ok, err := r.ContainerPath(60, tc.hostPath, st.Dev)
		if err != nil || ok != (tc.want != "") || got != tc.want {
			t.Errorf("ContainerPath(%q) = %q, %v, %v; want %q", tc.hostPath, got, ok, err, tc.want)
		}
	}
	f, err := r.HostPath(60, "/etc/motd")
	if err != nil || f.Path != filepath.Join(jail, "etc/motd") || f.ViaProcRoot {
		t.Errorf("HostPath(/etc/motd) = %+v, %v", f, err)
	}
}
