package proc

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drmfilter/drmfilter/internal/environ"
)

// fixture is a fake root: <root>/proc/PID/{stat,status,exe,cgroup} and
// executables under <root>/bin.
type fixture struct {
	t    *testing.T
	root string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, root: t.TempDir()}
}

func (f *fixture) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// bin creates an executable under <root>/bin and returns its absolute path.
func (f *fixture) bin(name, content string) string {
	f.write("bin/"+name, content)
	return filepath.Join(f.root, "bin", name)
}

func statLine(pid int, comm string, start uint64) string {
	return fmt.Sprintf("%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 %d 1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
		pid, comm, pid, pid, start)
}

func statusText(name string, uid, gid uint32, groups string) string {
	return fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t64\nGroups:\t%s\nKthread:\t0\n",
		name, uid, uid, uid, uid, gid, gid, gid, gid, groups)
}

// proc writes a process: stat with start time, status, exe pointing at
// exe ("" for none).
func (f *fixture) proc(pid int, start uint64, status, exe string) {
	f.t.Helper()
	d := fmt.Sprintf("proc/%d/", pid)
	f.write(d+"stat", statLine(pid, "x", start))
	f.write(d+"status", status)
	link := filepath.Join(f.root, d, "exe")
	os.Remove(link)
	if exe != "" {
		if err := os.Symlink(exe, link); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) resolver(opts Options) *Resolver { return NewResolver(f.root, opts) }

func exeIDOfPath(t *testing.T, p string) ExeID {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := fileID(f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFixtureLookup(t *testing.T) {
	f := newFixture(t)
	cat := f.bin("cat", "cat program")
	user, _ := os.ReadFile("testdata/status/user-groups.txt")
	f.proc(100, 5000, string(user), cat)
	r := f.resolver(Options{})
	p, err := r.Lookup(100, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := &Process{
		PID: 100, StartTime: 5000, Exe: cat, ExeID: exeIDOfPath(t, cat),
		UID: 1000, GID: 1000, Groups: []uint32{4, 24, 27, 100, 65534}, Comm: "cat",
	}
	if fmt.Sprintf("%+v", p) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	p2, err := r.Lookup(100, -1)
	if err != nil || p2 != p {
		t.Errorf("second lookup: %p %v, want the cached %p", p2, err, p)
	}
	if s := r.Stats(); s.Hits != 1 || s.Misses != 1 || s.Processes != 1 {
		t.Errorf("stats %+v", s)
	}
	sum, err := r.SHA256(p)
	if err != nil || sum != sha256.Sum256([]byte("cat program")) {
		t.Errorf("sha256 %x %v", sum, err)
	}
}

// A reused PID (same number, new start time) is a new process, even when
// everything else looks the same.
func TestFixturePIDReuse(t *testing.T) {
	f := newFixture(t)
	sh := f.bin("sh", "shell")
	cat := f.bin("cat", "cat")
	f.proc(200, 1000, statusText("sh", 0, 0, ""), sh)
	r := f.resolver(Options{})
	old, err := r.Lookup(200, -1)
	if err != nil {
		t.Fatal(err)
	}
	f.proc(200, 2000, statusText("cat", 1000, 1000, "1000"), cat)
	cur, err := r.Lookup(200, -1)
	if err != nil {
		t.Fatal(err)
	}
	if cur == old || cur.StartTime != 2000 || cur.Exe != cat || cur.UID != 1000 || old.Exe != sh || old.UID != 0 {
		t.Errorf("old %+v\ncur %+v", old, cur)
	}
	// Same everything but the start time: still a new process.
	f.proc(200, 3000, statusText("cat", 1000, 1000, "1000"), cat)
	again, err := r.Lookup(200, -1)
	if err != nil || again == cur || again.StartTime != 3000 {
		t.Errorf("start time 3000: %+v %v", again, err)
	}
	if s := r.Stats(); s.Hits != 0 || s.Misses != 3 {
		t.Errorf("stats %+v", s)
	}
}

// execve and setuid keep the PID and start time; the cache must notice.
func TestFixtureExecAndSetuid(t *testing.T) {
	f := newFixture(t)
	office := f.bin("soffice", "office")
	cat := f.bin("cat", "cat")
	f.proc(300, 1000, statusText("soffice", 1000, 1000, "1000"), office)
	r := f.resolver(Options{})
	p, err := r.Lookup(300, -1)
	if err != nil || p.Exe != office {
		t.Fatal(p, err)
	}
	f.proc(300, 1000, statusText("cat", 1000, 1000, "1000"), cat) // exec
	p, err = r.Lookup(300, -1)
	if err != nil || p.Exe != cat || p.Comm != "cat" {
		t.Fatalf("after exec: %+v %v", p, err)
	}
	f.proc(300, 1000, statusText("cat", 0, 1000, "1000"), cat) // setuid(0)
	p, err = r.Lookup(300, -1)
	if err != nil || p.UID != 0 {
		t.Fatalf("after setuid: %+v %v", p, err)
	}
	f.proc(300, 1000, statusText("cat", 0, 1000, "1000 27"), cat) // setgroups
	p, err = r.Lookup(300, -1)
	if err != nil || !slices.Equal(p.Groups, []uint32{1000, 27}) {
		t.Fatalf("after setgroups: %+v %v", p, err)
	}
	// The binary rewritten in place (same inode, new ctime and size).
	if err := os.WriteFile(cat, []byte("new cat, longer"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err = r.Lookup(300, -1)
	if err != nil || p.ExeID != exeIDOfPath(t, cat) {
		t.Fatalf("after rewrite: %+v %v", p, err)
	}
	if s := r.Stats(); s.Stale != 4 || s.Hits != 0 {
		t.Errorf("stats %+v", s)
	}
	if _, err := r.Lookup(300, -1); err != nil || r.Stats().Hits != 1 {
		t.Errorf("unchanged process not a hit: %v %+v", err, r.Stats())
	}
}

func TestFixtureGoneZombieKernelThread(t *testing.T) {
	f := newFixture(t)
	zombie, _ := os.ReadFile("testdata/status/zombie.txt")
	kthread, _ := os.ReadFile("testdata/status/kthread.txt")
	f.proc(400, 10, string(zombie), "")
	f.proc(2, 1, string(kthread), "")
	r := f.resolver(Options{})
	for _, pid := range []int32{400, 999} {
		if p, err := r.Lookup(pid, -1); !errors.Is(err, ErrGone) {
			t.Errorf("pid %d: %+v, %v; want ErrGone", pid, p, err)
		}
	}
	if s := r.Stats(); s.Gone != 2 {
		t.Errorf("stats %+v", s)
	}
	p, err := r.Lookup(2, -1)
	if err != nil || !p.KernelThread || p.Exe != "" || p.Comm != "kthreadd" {
		t.Fatalf("kthreadd: %+v %v", p, err)
	}
	if p2, err := r.Lookup(2, -1); err != nil || p2 != p {
		t.Errorf("kernel thread not cached: %v", err)
	}
	if _, err := r.SHA256(p); !errors.Is(err, ErrNoExe) {
		t.Errorf("sha256 of a kernel thread: %v", err)
	}
	if _, err := r.Lookup(0, -1); err == nil {
		t.Error("pid 0 accepted")
	}
}

// A file whose name really ends in " (deleted)" and that has links is not
// deleted; the live tests cover a truly deleted executable.
func TestFixtureDeletedSuffixName(t *testing.T) {
	f := newFixture(t)
	odd := f.bin("tool (deleted)", "x")
	f.proc(500, 1, statusText("tool", 0, 0, ""), odd)
	p, err := f.resolver(Options{}).Lookup(500, -1)
	if err != nil || p.Deleted || p.Exe != odd {
		t.Errorf("%+v %v", p, err)
	}
}

func TestFixtureCacheBound(t *testing.T) {
	f := newFixture(t)
	sh := f.bin("sh", "sh")
	for pid := 1; pid <= 20; pid++ {
		f.proc(pid, uint64(pid), statusText("sh", 0, 0, ""), sh)
	}
	r := f.resolver(Options{CacheSize: 4})
	for pid := int32(1); pid <= 20; pid++ {
		if _, err := r.Lookup(pid, -1); err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.Processes != 4 {
		t.Errorf("cache holds %d, bound 4", s.Processes)
	}
	r.Lookup(20, -1)
	if s := r.Stats(); s.Hits != 1 {
		t.Errorf("most recent not kept: %+v", s)
	}
	r.Forget(20)
	if s := r.Stats(); s.Processes != 3 {
		t.Errorf("Forget: %+v", s)
	}
}

func TestFixtureContainer(t *testing.T) {
	f := newFixture(t)
	cat := f.bin("cat", "cat")
	id := "3f9c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
	f.proc(600, 77, statusText("cat", 0, 0, ""), cat)
	f.write("proc/600/cgroup", "0::/system.slice/docker-"+id+".scope\n")
	pod := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f.proc(601, 78, statusText("cat", 0, 0, ""), cat)
	f.write("proc/601/cgroup", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-"+pod+".scope\n")
	f.proc(602, 79, statusText("cat", 0, 0, ""), cat)
	f.write("proc/602/cgroup", "0::/user.slice\n")
	r := f.resolver(Options{Environ: environ.NewResolver(f.root, 0)})
	for pid, want := range map[int32]Container{
		600: {ID: id, Runtime: "docker"},
		601: {ID: pod, Runtime: "containerd", Kubernetes: true, PodUID: "1b2c3d4e-0000-1111-2222-333344445555"},
		602: {},
	} {
		p, err := r.Lookup(pid, -1)
		if err != nil {
			t.Fatal(err)
		}
		if p.Container != want {
			t.Errorf("pid %d: %+v, want %+v", pid, p.Container, want)
		}
	}
}

func TestFixtureHashLimitsAndChanges(t *testing.T) {
	f := newFixture(t)
	big := f.bin("big", string(make([]byte, 5000)))
	f.proc(700, 1, statusText("big", 0, 0, ""), big)
	r := f.resolver(Options{MaxHashSize: 4096})
	p, err := r.Lookup(700, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SHA256(p); !errors.Is(err, ErrTooLarge) {
		t.Errorf("5000 bytes, limit 4096: %v", err)
	}
	stale := *p
	stale.ExeID.CtimeNs++
	if _, err := r.SHA256(&stale); !errors.Is(err, ErrChanged) {
		t.Errorf("other ExeID: %v", err)
	}
	gone := *p
	gone.PID = 999
	if _, err := r.SHA256(&gone); !errors.Is(err, ErrGone) {
		t.Errorf("no process: %v", err)
	}
	if s := r.Stats(); s.Hashes != 0 {
		t.Errorf("errors were cached: %+v", s)
	}
}
