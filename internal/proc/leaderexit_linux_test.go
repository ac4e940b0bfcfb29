package proc

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

func leaderState(t *testing.T, pid int32) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatus(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return string(st.State)
}

// Issue #17 case 17: a process whose leader called pthread_exit has no
// /proc/PID/exe and a zombie's status, but it runs (and can open files)
// on its other threads. It is identified through a running thread: its
// executable, and the credentials of that thread (the leader's are frozen
// at its exit: after setuid, /proc/PID/status still says uid 0).
func TestLiveLeaderExited(t *testing.T) {
	testutil.RequireRoot(t) // setuid in the helper, and a uid to tell apart
	bin := testutil.BuildC(t, "leaderexit", filepath.Join("testdata", "leaderexit.c"))
	want := exeIDOfPath(t, bin)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		id   uint32
	}{
		{"root", []string{"-w", "open", "/dev/null"}, 0},
		{"setuid", []string{"-u", "65534", "-w", "open", "/dev/null"}, 65534},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, nil, bin, tc.args...)
			if line, err := c.out.ReadString('\n'); line != "ready\n" {
				t.Fatalf("helper said %q, %v", line, err)
			}
			if s := leaderState(t, c.pid); s != "Z" {
				t.Fatalf("leader state %s, want Z (the helper's main thread did not exit)", s)
			}
			r := NewResolver("/", Options{Cgroups: true})
			for _, fd := range []int{-1, c.pidfd} {
				p, err := r.Lookup(c.pid, fd)
				if err != nil {
					t.Fatalf("pidfd %d: %v", fd, err)
				}
				if p.Exe != bin || p.ExeID != want || p.UID != tc.id || p.GID != tc.id || p.KernelThread ||
					p.PID != c.pid || p.Thread == 0 || p.Thread == c.pid || p.StartTime == 0 || p.Comm != "leaderexit" {
					t.Errorf("pidfd %d: got %+v\nwant exe %s uid %d gid %d, read through a thread", fd, p, bin, tc.id, tc.id)
				}
				p2, err := r.Lookup(c.pid, fd)
				if err != nil || p2 != p {
					t.Errorf("pidfd %d: second lookup not the cached process: %+v %v", fd, p2, err)
				}
				sum, err := r.SHA256(p)
				if err != nil || sum != sha256.Sum256(data) {
					t.Errorf("pidfd %d: sha256 %x %v", fd, sum, err)
				}
			}
			if s := r.Stats(); s.Hits != 2 || s.Misses != 2 || s.Gone != 0 {
				t.Errorf("stats %+v", s)
			}
			// Once its last thread has exited it is gone, reaped or not:
			// wait for the exit without reaping (WNOWAIT), so that the
			// PID stays the helper's until the cleanup kills and reaps it.
			c.in.Close()
			var info unix.Siginfo
			if err := unix.Waitid(unix.P_PID, int(c.pid), &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
				t.Fatalf("waitid: %v", err)
			}
			for _, fd := range []int{c.pidfd, -1} {
				if p, err := r.Lookup(c.pid, fd); !errors.Is(err, ErrGone) || errors.Is(err, ErrUnidentified) {
					t.Errorf("pidfd %d after exit: %+v, %v; want ErrGone", fd, p, err)
				}
			}
		})
	}
}

// A process looked up while its leader ran is read again, through a
// thread, once the leader has exited: the missing executable is a change,
// not an error, on both revalidation paths.
func TestLiveLeaderExitsAfterLookup(t *testing.T) {
	bin := testutil.BuildC(t, "leaderexit", filepath.Join("testdata", "leaderexit.c"))
	c := start(t, nil, bin, "-h", "-w", "open", "/dev/null")
	if line, err := c.out.ReadString('\n'); line != "leader\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	r := NewResolver("/", Options{})
	for _, fd := range []int{-1, c.pidfd} {
		if p, err := r.Lookup(c.pid, fd); err != nil || p.Thread != 0 || p.Exe != bin {
			t.Fatalf("pidfd %d, leader running: %+v %v", fd, p, err)
		}
	}
	if _, err := c.in.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := c.out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if s := leaderState(t, c.pid); s != "Z" {
		t.Fatalf("leader state %s, want Z", s)
	}
	for _, fd := range []int{-1, c.pidfd} {
		p, err := r.Lookup(c.pid, fd)
		if err != nil || p.Thread == 0 || p.Exe != bin || p.UID != uint32(os.Getuid()) {
			t.Errorf("pidfd %d, leader exited: %+v %v", fd, p, err)
		}
	}
	if s := r.Stats(); s.Stale != 2 || s.Misses != 4 || s.Gone != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The same in a fixture tree: the leader runs, then exits while thread
// 401 runs on.
func TestFixtureLeaderExited(t *testing.T) {
	f := newFixture(t)
	tool := f.bin("tool", "tool program")
	zombie, err := os.ReadFile("testdata/status/zombie.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.proc(400, 10, statusText("tool", 1000, 1001, "1001"), tool)
	r := f.resolver(Options{})
	p, err := r.Lookup(400, -1)
	if err != nil || p.Thread != 0 || p.Exe != tool {
		t.Fatalf("leader running: %+v %v", p, err)
	}
	// pthread_exit in main: no exe link, a zombie's status.
	f.proc(400, 10, string(zombie), "")
	f.write("proc/400/task/400/status", string(zombie))
	f.write("proc/400/task/401/status", statusText("tool", 1000, 1001, "1001"))
	if err := os.Symlink(tool, filepath.Join(f.root, "proc/400/task/401/exe")); err != nil {
		t.Fatal(err)
	}
	p, err = r.Lookup(400, -1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exe != tool || p.UID != 1000 || p.GID != 1001 || p.Thread != 401 || p.KernelThread || p.StartTime != 10 {
		t.Errorf("got %+v", p)
	}
	if p2, err := r.Lookup(400, -1); err != nil || p2 != p {
		t.Errorf("second lookup not a hit: %+v %v", p2, err)
	}
	// setuid in the running threads: the leader's status is unchanged.
	f.write("proc/400/task/401/status", statusText("tool", 0, 0, ""))
	if p, err := r.Lookup(400, -1); err != nil || p.UID != 0 || p.Thread != 401 {
		t.Errorf("after setuid: %+v %v", p, err)
	}
	if s := r.Stats(); s.Hits != 1 || s.Misses != 3 || s.Stale != 2 {
		t.Errorf("stats %+v", s)
	}
	// The thread exits: no thread runs, the process is gone.
	f.write("proc/400/task/401/status", string(zombie))
	if p, err := r.Lookup(400, -1); !errors.Is(err, ErrGone) {
		t.Errorf("all threads exited: %+v %v; want ErrGone", p, err)
	}
}

// A lookup that fails for a process that still runs says so: the agent
// must not let such a process through as it would one that is gone.
func TestFixtureRunningButUnreadable(t *testing.T) {
	f := newFixture(t)
	tool := f.bin("tool", "tool program")
	zombie, err := os.ReadFile("testdata/status/zombie.txt")
	if err != nil {
		t.Fatal(err)
	}
	noUid := "Name:\ttool\nState:\tS (sleeping)\nGid:\t0\t0\t0\t0\n"
	// A running leader whose status cannot be parsed.
	f.proc(500, 10, noUid, tool)
	f.write("proc/500/task/500/status", noUid)
	// A zombie leader whose running thread's status cannot be parsed.
	f.proc(600, 10, string(zombie), "")
	f.write("proc/600/task/600/status", string(zombie))
	f.write("proc/600/task/601/status", noUid)
	if err := os.Symlink(tool, filepath.Join(f.root, "proc/600/task/601/exe")); err != nil {
		t.Fatal(err)
	}
	r := f.resolver(Options{})
	for _, pid := range []int32{500, 600} {
		_, err := r.Lookup(pid, -1)
		var le *LookupError
		if !errors.Is(err, ErrUnidentified) || errors.Is(err, ErrGone) || !errors.As(err, &le) || le.PID != pid || le.Gone {
			t.Errorf("pid %d: %v; want ErrUnidentified, not ErrGone", pid, err)
		}
	}
	if s := r.Stats(); s.Gone != 0 {
		t.Errorf("stats %+v", s)
	}
}
