package proc

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// helperEnv makes the test binary act as a helper process (see helper).
const helperEnv = "DRMFILTER_PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helper(os.Getenv(helperEnv))
		return
	}
	os.Exit(testutil.RunWithFDCheck(m))
}

// helper "setuid": waits for a line, calls setuid(1000) (all threads, as
// Go does since 1.16) without exec'ing, says "ok", and waits for stdin to
// close.
func helper(mode string) {
	in := bufio.NewReader(os.Stdin)
	switch mode {
	case "setuid":
		os.Stdout.WriteString("ready\n")
		in.ReadString('\n')
		if err := syscall.Setuid(1000); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("ok\n")
		io.Copy(io.Discard, in)
	}
	os.Exit(0)
}

type child struct {
	cmd   *exec.Cmd
	pid   int32
	pidfd int
	in    io.WriteCloser
	out   *bufio.Reader
}

// startB starts `sleep 30` for a benchmark.
func startB(b *testing.B) *child { return start(b, nil, "sleep", "30") }

// start runs a child, with a pidfd, and kills it by PID (then reaps it)
// in cleanup.
func start(t testing.TB, env []string, name string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, pid: int32(cmd.Process.Pid), pidfd: -1, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		syscall.Kill(int(c.pid), syscall.SIGKILL)
		in.Close()
		cmd.Wait()
		if c.pidfd >= 0 {
			unix.Close(c.pidfd)
		}
	})
	fd, err := unix.PidfdOpen(int(c.pid), 0)
	if err != nil {
		t.Fatalf("pidfd_open: %v", err)
	}
	c.pidfd = fd
	return c
}

// waitExe waits until the child has exec'd exe (its /proc/PID/exe).
func waitExe(t *testing.T, pid int32, exe string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got, _ := os.Readlink("/proc/" + itoa(pid) + "/exe"); got == exe {
			return
		}
	}
	t.Fatalf("pid %d never ran %s", pid, exe)
}

func itoa(pid int32) string { return strconv.Itoa(int(pid)) }

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLiveSelf(t *testing.T) {
	r := NewResolver("/", Options{})
	p, err := r.Lookup(int32(os.Getpid()), -1)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	groups, _ := os.Getgroups()
	gs := make([]uint32, 0, len(groups))
	for _, g := range groups {
		gs = append(gs, uint32(g))
	}
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	if p.Exe != exe || p.UID != uint32(os.Getuid()) || p.GID != uint32(os.Getgid()) || !slices.Equal(p.Groups, gs) ||
		p.Comm != comm || p.Deleted || p.KernelThread || p.StartTime == 0 || p.ExeID != exeIDOfPath(t, exe) {
		t.Errorf("got %+v\nwant exe %s uid %d gid %d groups %v comm %s", p, exe, os.Getuid(), os.Getgid(), gs, comm)
	}
}

func TestLiveChild(t *testing.T) {
	sleep := lookPath(t, "sleep")
	c := start(t, nil, "sleep", "30")
	waitExe(t, c.pid, sleep)
	r := NewResolver("/", Options{Environ: nil})
	for _, fd := range []int{-1, c.pidfd} {
		p, err := r.Lookup(c.pid, fd)
		if err != nil {
			t.Fatalf("pidfd %d: %v", fd, err)
		}
		if p.Exe != sleep || p.PID != c.pid || p.UID != uint32(os.Getuid()) || p.Comm != "sleep" {
			t.Errorf("pidfd %d: %+v", fd, p)
		}
		p2, err := r.Lookup(c.pid, fd)
		if err != nil || p2 != p {
			t.Errorf("pidfd %d: second lookup not the cached process: %v", fd, err)
		}
	}
	if r.pidfs.Load() != 1 {
		t.Errorf("pidfds not recognised as pidfs (kernel 6.9+ expected here)")
	}
	if s := r.Stats(); s.Hits != 2 || s.Misses != 2 {
		t.Errorf("stats %+v", s)
	}
	// After the child exits and is reaped, both paths say ErrGone.
	syscall.Kill(int(c.pid), syscall.SIGKILL)
	c.cmd.Wait()
	for _, fd := range []int{c.pidfd, -1} {
		if p, err := r.Lookup(c.pid, fd); !errors.Is(err, ErrGone) {
			t.Errorf("pidfd %d after exit: %+v, %v", fd, p, err)
		}
	}
}

// Two processes never share a pidfs key, and one process always has the
// same key whatever pidfd names it.
func TestLivePidfdKeys(t *testing.T) {
	a := start(t, nil, "sleep", "30")
	b := start(t, nil, "sleep", "30")
	r := NewResolver("/", Options{})
	ka, _, err := r.pidfdKey(a.pidfd)
	if err != nil {
		t.Fatal(err)
	}
	kb, _, err := r.pidfdKey(b.pidfd)
	if err != nil {
		t.Fatal(err)
	}
	fd2, err := unix.PidfdOpen(int(a.pid), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd2)
	ka2, _, _ := r.pidfdKey(fd2)
	if ka.ino == 0 || ka == kb || ka != ka2 {
		t.Errorf("keys a %+v b %+v a again %+v", ka, kb, ka2)
	}
}

// A process that execs keeps its PID, start time and pidfd; the cached
// answer must follow it to the new program.
func TestLiveExecIsNoticed(t *testing.T) {
	sh := lookPath(t, "sh")
	sleep := lookPath(t, "sleep")
	c := start(t, nil, "sh", "-c", "read x; exec sleep 30")
	waitExe(t, c.pid, sh)
	r := NewResolver("/", Options{})
	for _, fd := range []int{c.pidfd, -1} {
		p, err := r.Lookup(c.pid, fd)
		if err != nil || p.Exe != sh {
			t.Fatalf("before exec: %+v %v", p, err)
		}
	}
	io.WriteString(c.in, "go\n")
	waitExe(t, c.pid, sleep)
	for _, fd := range []int{c.pidfd, -1} {
		p, err := r.Lookup(c.pid, fd)
		if err != nil || p.Exe != sleep || p.Comm != "sleep" {
			t.Errorf("pidfd %d after exec: %+v %v", fd, p, err)
		}
	}
	if s := r.Stats(); s.Stale != 2 {
		t.Errorf("stats %+v", s)
	}
}

// setuid(2) without exec changes the real uid; the cached answer must
// follow, through PIDFD_GET_INFO with a pidfd and /proc/PID/status without.
func TestLiveSetuidIsNoticed(t *testing.T) {
	testutil.RequireRoot(t)
	self, _ := os.Executable()
	c := start(t, []string{helperEnv + "=setuid"}, self)
	if l, err := c.out.ReadString('\n'); l != "ready\n" {
		t.Fatalf("helper: %q %v", l, err)
	}
	r := NewResolver("/", Options{})
	for _, fd := range []int{c.pidfd, -1} {
		if p, err := r.Lookup(c.pid, fd); err != nil || p.UID != 0 {
			t.Fatalf("before setuid: %+v %v", p, err)
		}
	}
	io.WriteString(c.in, "go\n")
	if l, err := c.out.ReadString('\n'); l != "ok\n" {
		t.Fatalf("helper: %q %v", l, err)
	}
	for _, fd := range []int{c.pidfd, -1} {
		if p, err := r.Lookup(c.pid, fd); err != nil || p.UID != 1000 {
			t.Errorf("pidfd %d after setuid: %+v %v", fd, p, err)
		}
	}
	if r.pidfdGet.Load() != 1 {
		t.Error("PIDFD_GET_INFO not used (kernel 6.13+ expected here)")
	}
	if s := r.Stats(); s.Stale != 2 {
		t.Errorf("stats %+v", s)
	}
}

// copyExe copies a program into a temporary directory.
func copyExe(t *testing.T, name string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(lookPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "my"+name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestLiveHash(t *testing.T) {
	exe, content := copyExe(t, "sleep")
	c := start(t, nil, exe, "30")
	waitExe(t, c.pid, exe)
	r := NewResolver("/", Options{})
	p, err := r.Lookup(c.pid, c.pidfd)
	if err != nil || p.Exe != exe {
		t.Fatalf("%+v %v", p, err)
	}
	want := sha256.Sum256(content)
	for range 3 {
		sum, err := r.SHA256(p)
		if err != nil || sum != want {
			t.Fatalf("sha256 %x, %v; want %x", sum, err, want)
		}
	}
	if s := r.Stats(); s.HashReads != 1 || s.HashHits != 2 || s.Hashes != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A deleted executable is still looked up and hashed through
// /proc/PID/exe.
func TestLiveDeletedExe(t *testing.T) {
	exe, content := copyExe(t, "sleep")
	c := start(t, nil, exe, "30")
	waitExe(t, c.pid, exe)
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	r := NewResolver("/", Options{})
	p, err := r.Lookup(c.pid, c.pidfd)
	if err != nil || !p.Deleted || p.Exe != exe {
		t.Fatalf("%+v %v", p, err)
	}
	if sum, err := r.SHA256(p); err != nil || sum != sha256.Sum256(content) {
		t.Errorf("sha256 of deleted exe: %v", err)
	}
}

// Concurrent requests for one executable read it once.
func TestLiveHashSingleFlight(t *testing.T) {
	exe, content := copyExe(t, "sleep")
	c := start(t, nil, exe, "30")
	waitExe(t, c.pid, exe)
	r := NewResolver("/", Options{})
	p, err := r.Lookup(c.pid, c.pidfd)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-gate
			if sum, err := r.SHA256(p); err != nil || sum != sha256.Sum256(content) {
				t.Errorf("sha256: %v", err)
			}
		})
	}
	close(gate)
	wg.Wait()
	if s := r.Stats(); s.HashReads != 1 || s.HashHits+s.HashShared != n-1 {
		t.Errorf("stats %+v", s)
	}
}

// syscr is this process's count of read(2)-like system calls
// (/proc/self/io).
func syscr(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "syscr: "); ok {
			n, _ := parseUint([]byte(v), 63)
			return int64(n)
		}
	}
	t.Skip("no syscr in /proc/self/io")
	return 0
}

// A hit with a pidfd reads no file (only fstat, stat and an ioctl) and
// does not allocate.
func TestLiveHitReadsNothing(t *testing.T) {
	c := start(t, nil, "sleep", "30")
	r := NewResolver("/", Options{})
	if _, err := r.Lookup(c.pid, c.pidfd); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	before := syscr(t)
	for range n {
		if _, err := r.Lookup(c.pid, c.pidfd); err != nil {
			t.Fatal(err)
		}
	}
	after := syscr(t)
	// The two reads of /proc/self/io itself count, and a few of the
	// runtime's; n hits must add none.
	if d := after - before; d > 10 {
		t.Errorf("%d hits made %d read calls", n, d)
	}
	if a := testing.AllocsPerRun(100, func() { r.Lookup(c.pid, c.pidfd) }); a != 0 {
		t.Errorf("a pidfd hit allocates %v times", a)
	}
	// The measure works: hits without a pidfd read /proc/PID/status and
	// /proc/PID/stat.
	if _, err := r.Lookup(c.pid, -1); err != nil {
		t.Fatal(err)
	}
	before = syscr(t)
	for range n {
		if _, err := r.Lookup(c.pid, -1); err != nil {
			t.Fatal(err)
		}
	}
	if d := syscr(t) - before; d < 2*n {
		t.Errorf("%d hits without a pidfd made only %d read calls", n, d)
	}
	if s := r.Stats(); s.Misses != 2 {
		t.Errorf("stats %+v", s)
	}
}

// A copy of /bin/true, held stopped at its first instruction (traced, so
// that it cannot exit), is hashed to the SHA-256 of its bytes, once.
func TestLiveHashTrue(t *testing.T) {
	exe, content := copyExe(t, "true")
	cmd := exec.Command(exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true} // stops after execve
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := int32(cmd.Process.Pid)
	t.Cleanup(func() {
		syscall.Kill(int(pid), syscall.SIGKILL)
		cmd.Wait()
	})
	waitExe(t, pid, exe)
	r := NewResolver("/", Options{})
	p, err := r.Lookup(pid, -1)
	if err != nil || p.Exe != exe {
		t.Fatalf("%+v %v", p, err)
	}
	for range 2 {
		if sum, err := r.SHA256(p); err != nil || sum != sha256.Sum256(content) {
			t.Fatalf("sha256 %x %v", sum, err)
		}
	}
	if s := r.Stats(); s.HashReads != 1 || s.HashHits != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestLiveCgroupContainer: with Options.Cgroups, a process in a cgroup
// named like a Docker container is reported in that container.
func TestLiveCgroupContainer(t *testing.T) {
	testutil.RequireRoot(t)
	base := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		base = "/sys/fs/cgroup"
	}
	id := strings.Repeat("d0c4e7", 10) + "abcd"
	cg := filepath.Join(base, "system.slice", "docker-"+id+".scope")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		if testutil.InCI() {
			t.Fatalf("cgroup: %v", err)
		}
		t.Skipf("cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	cmd := exec.Command("sh", "-c", "echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := NewResolver("/", Options{Cgroups: true})
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := r.Lookup(int32(cmd.Process.Pid), -1)
		if err == nil && p.Exe != "" && strings.HasSuffix(p.Exe, "sleep") {
			if p.Container.ID != id || p.Container.Runtime != "docker" {
				t.Fatalf("container: %+v", p.Container)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup: %+v %v", p, err)
		}
		r.Forget(int32(cmd.Process.Pid))
		time.Sleep(10 * time.Millisecond)
	}
	own, err := r.Lookup(int32(os.Getpid()), -1)
	if err != nil || own.Container.ID != "" {
		t.Fatalf("this test process must not be in a container: %+v %v", own, err)
	}
}
