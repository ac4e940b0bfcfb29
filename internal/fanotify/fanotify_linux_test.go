package fanotify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Safety rules for these tests, which run as root: mark only the tmpfs the
// test mounted itself; answer every permission event on every path (the
// loop runs in a goroutine stopped in t.Cleanup, and closing the listener
// makes the kernel allow whatever is still pending); run openers as child
// processes with a timeout, never in this process (its own opens are
// self-events).

func TestMain(m *testing.M) { os.Exit(testutil.RunWithFDCheck(m)) }

const clientTimeout = 10 * time.Second

// fixture is a listener marking a private tmpfs that holds files.
type fixture struct {
	l   *Listener
	dir string
}

// setup mounts a tmpfs, writes files (name -> content) on it before anything
// is marked, opens a listener closed in t.Cleanup, and marks the mount with
// mask.
func setup(t *testing.T, opts Options, mask uint64, files map[string]string) *fixture {
	t.Helper()
	testutil.RequireFanotify(t)
	dir := testutil.MountTmpfs(t)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if mask != 0 {
		if err := l.MarkMount(dir, mask); err != nil {
			t.Fatalf("MarkMount: %v", err)
		}
	}
	return &fixture{l: l, dir: dir}
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// serve runs Handle in a goroutine until t ends: the cleanup cancels it,
// closes the listener and waits for the loop, so no event stays unanswered
// even when the test fails. It returns a function that stops the loop early
// and returns Handle's error.
func serve(t *testing.T, l *Listener, h Handler, opts HandleOptions) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Handle(ctx, h, opts) }()
	var (
		once sync.Once
		herr error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			l.Close()
			select {
			case herr = <-errc:
			case <-time.After(clientTimeout):
				herr = errors.New("Handle did not return after Close")
			}
		})
		return herr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			if _, ok := err.(*PanicError); !ok {
				t.Errorf("Handle: %v", err)
			}
		}
	})
	return stop
}

// client runs a program as a child process with a timeout; it is killed by
// PID if it outlives it.
func client(t *testing.T, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v timed out (unanswered permission event?)", name, args)
	}
	return o.String(), e.String(), err
}

// startClient starts a program without waiting; it is killed in t.Cleanup
// if still running.
func startClient(t *testing.T, name string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return cmd, &out
}

// recorder is a handler that decides by file name and records what it saw.
type recorder struct {
	mu     sync.Mutex
	deny   map[string]bool // base names to deny
	events []seen
}

type seen struct {
	mask  uint64
	name  string
	pid   int32
	pidfd int32
	stat  FileStat
}

func (r *recorder) handle(e *Event) Verdict {
	var buf [unix.PathMax]byte
	p, err := PathOf(e.Fd, buf[:])
	if err != nil {
		return Deny
	}
	st, err := Stat(e.Fd)
	if err != nil {
		return Deny
	}
	name := filepath.Base(string(p))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, seen{mask: e.Mask, name: name, pid: e.Pid, pidfd: e.PidFd, stat: st})
	if r.deny[name] {
		return Deny
	}
	return Allow
}

func (r *recorder) count(name string, mask uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.events {
		if s.name == name && s.mask&mask != 0 {
			n++
		}
	}
	return n
}

func wantDenied(t *testing.T, stderr string, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("client succeeded, want it denied")
	}
	if !strings.Contains(stderr, "Operation not permitted") {
		t.Fatalf("client failed with %v, stderr %q; want EPERM", err, stderr)
	}
}

func TestOpenPermDenyAndAllow(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"secret": "s3cret\n", "public": "hello\n"})
	var want unix.Stat_t
	if err := unix.Stat(f.path("secret"), &want); err != nil {
		t.Fatal(err)
	}
	r := &recorder{deny: map[string]bool{"secret": true}}
	serve(t, f.l, r.handle, HandleOptions{})

	_, stderr, err := client(t, "cat", f.path("secret"))
	wantDenied(t, stderr, err)
	out, stderr, err := client(t, "cat", f.path("public"))
	if err != nil || out != "hello\n" {
		t.Fatalf("cat public: %v %q %q", err, out, stderr)
	}
	if r.count("secret", OpenPerm) != 1 || r.count("public", OpenPerm) != 1 {
		t.Fatalf("events %+v, want one open of each file", r.events)
	}
	for _, s := range r.events {
		if s.name == "secret" && (s.stat.Ino != want.Ino || s.stat.Dev != uint64(want.Dev) || s.stat.Nlink != 1) {
			t.Errorf("Stat of event fd = %+v, want ino %d dev %d", s.stat, want.Ino, want.Dev)
		}
	}
}

func TestOpenExecPerm(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, 0, nil)
	bin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	prog := f.path("true")
	if err := os.WriteFile(prog, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.l.MarkMount(f.dir, OpenExecPerm); err != nil {
		t.Fatal(err)
	}
	var deny atomic.Bool
	deny.Store(true)
	var calls atomic.Int32
	serve(t, f.l, func(e *Event) Verdict {
		calls.Add(1)
		if e.Mask&OpenExecPerm == 0 {
			return Deny // only exec was marked
		}
		if deny.Load() {
			return Deny
		}
		return Allow
	}, HandleOptions{})

	_, _, err = client(t, prog)
	if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
		t.Fatalf("exec with deny: %v, want EPERM or EACCES", err)
	}
	deny.Store(false)
	if _, _, err := client(t, prog); err != nil {
		t.Fatalf("exec with allow: %v", err)
	}
	if calls.Load() < 2 {
		t.Fatalf("handler called %d times, want at least 2", calls.Load())
	}
}

func TestAccessPerm(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm|AccessPerm, map[string]string{"data": "payload\n"})
	var opens, reads atomic.Int32
	serve(t, f.l, func(e *Event) Verdict {
		if e.Mask&AccessPerm != 0 {
			reads.Add(1)
			return Deny
		}
		opens.Add(1)
		return Allow
	}, HandleOptions{})

	_, stderr, err := client(t, "cat", f.path("data"))
	wantDenied(t, stderr, err) // open allowed, read(2) denied
	if opens.Load() != 1 || reads.Load() < 1 {
		t.Fatalf("opens %d reads %d, want 1 and at least 1", opens.Load(), reads.Load())
	}
}

func TestIgnoreMarks(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"a": "a", "b": "b", "c": "c"})
	t.Logf("ignore-mark flags: %#x", f.l.Features().IgnoreFlags)
	if err := f.l.Ignore(f.path("a"), OpenPerm); err != nil {
		t.Fatalf("Ignore: %v", err)
	}
	r := &recorder{}
	serve(t, f.l, func(e *Event) Verdict {
		v := r.handle(e)
		// Cache the verdict for c from the event itself.
		var buf [unix.PathMax]byte
		if p, err := PathOf(e.Fd, buf[:]); err == nil && filepath.Base(string(p)) == "c" {
			if err := f.l.IgnoreFd(e.Fd, OpenPerm); err != nil {
				t.Errorf("IgnoreFd: %v", err)
			}
		}
		return v
	}, HandleOptions{})

	cat := func(name string) {
		t.Helper()
		if _, stderr, err := client(t, "cat", f.path(name)); err != nil {
			t.Fatalf("cat %s: %v %s", name, err, stderr)
		}
	}
	for range 2 {
		cat("a")
		cat("b")
		cat("c")
	}
	if n := r.count("a", OpenPerm); n != 0 {
		t.Errorf("ignored file a: %d events, want 0", n)
	}
	if n := r.count("b", OpenPerm); n != 2 {
		t.Errorf("file b: %d events, want 2", n)
	}
	if n := r.count("c", OpenPerm); n != 1 {
		t.Errorf("file c ignored from its event: %d events, want 1", n)
	}

	// The mark survives a write (FAN_MARK_IGNORED_SURV_MODIFY), done here
	// by a child so that the write's own open is not a self-event.
	if _, stderr, err := client(t, "sh", "-c", "echo more >> "+f.path("a")); err != nil {
		t.Fatalf("append to a: %v %s", err, stderr)
	}
	cat("a")
	if n := r.count("a", OpenPerm); n != 0 {
		t.Errorf("after a write, file a: %d events, want 0", n)
	}

	// Unignore brings a's events back; Flush drops c's ignore mark.
	if err := f.l.Unignore(f.path("a"), OpenPerm); err != nil {
		t.Fatalf("Unignore: %v", err)
	}
	cat("a")
	if n := r.count("a", OpenPerm); n != 1 {
		t.Errorf("after Unignore, file a: %d events, want 1", n)
	}
	if err := f.l.Flush(unix.FAN_MARK_INODE); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	cat("c")
	if n := r.count("c", OpenPerm); n != 2 {
		t.Errorf("after Flush, file c: %d events, want 2", n)
	}
}

// readPerm reads from l until it holds n permission events or the deadline
// passes. The caller answers and closes them.
func readPerm(t *testing.T, l *Listener, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var got []Event
	buf := make([]byte, 4096)
	for len(got) < n {
		evs, err := l.ReadEvents(ctx, buf, make([]Event, 0, 16))
		for i := range evs {
			if evs[i].IsPerm() {
				got = append(got, evs[i])
			} else {
				evs[i].Close()
			}
		}
		if err != nil {
			for i := range got {
				l.Respond(got[i].Fd, true)
				got[i].Close()
			}
			t.Fatalf("ReadEvents: %v (have %d of %d events)", err, len(got), n)
		}
	}
	return got
}

func closeAll(evs []Event) {
	for i := range evs {
		evs[i].Close()
	}
}

func TestCloseReleasesPendingEvents(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"read": "was read\n", "queued": "was queued\n"})

	// One event read but never answered, one still in the queue.
	c1, out1 := startClient(t, "cat", f.path("read"))
	evs := readPerm(t, f.l, 1)
	defer closeAll(evs)
	c2, out2 := startClient(t, "cat", f.path("queued"))
	time.Sleep(100 * time.Millisecond) // let the second open reach the queue

	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Wait(); err != nil || out1.String() != "was read\n" {
		t.Fatalf("pending client after Close: %v %q", err, out1)
	}
	if err := c2.Wait(); err != nil || out2.String() != "was queued\n" {
		t.Fatalf("queued client after Close: %v %q", err, out2)
	}
	if err := f.l.Respond(evs[0].Fd, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("Respond after Close: %v, want ErrClosed", err)
	}
	if _, err := f.l.ReadEvents(context.Background(), make([]byte, 4096), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadEvents after Close: %v, want ErrClosed", err)
	}
}

func TestReadEventsWakes(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, nil)
	buf := make([]byte, 4096)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.l.ReadEvents(ctx, buf, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadEvents with a deadline: %v", err)
	}
	// The deadline of the last call must not leak into the next one.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	errc := make(chan error, 1)
	go func() {
		_, err := f.l.ReadEvents(ctx2, buf, nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("ReadEvents returned early: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel2()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadEvents after cancel: %v", err)
	}

	go func() {
		_, err := f.l.ReadEvents(context.Background(), buf, nil)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	f.l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadEvents after Close: %v", err)
		}
	case <-time.After(clientTimeout):
		t.Fatal("Close did not wake ReadEvents")
	}
}

// TestKernelBatchedWrite records what the kernel does with several struct
// fanotify_response in one write(2). On Linux 6.18 it processes the first
// and returns 8; RespondAll relies only on that being a prefix.
func TestKernelBatchedWrite(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"x": "x\n", "y": "y\n"})
	cx, outx := startClient(t, "cat", f.path("x"))
	cy, outy := startClient(t, "cat", f.path("y"))
	evs := readPerm(t, f.l, 2)
	defer closeAll(evs)

	var b []byte
	for _, e := range evs {
		b = appendResponse(b, Response{Fd: e.Fd, Verdict: Allow}, false)
	}
	var (
		n    int
		werr error
	)
	f.l.rc.Control(func(fd uintptr) { n, werr = unix.Write(int(fd), b) })
	if werr != nil {
		t.Fatalf("write of two responses: %v", werr)
	}
	t.Logf("write(2) of %d bytes (2 responses) returned %d", len(b), n)
	// Whatever the kernel left unprocessed must still be pending: answering
	// it again succeeds, and answering a processed one fails with ENOENT.
	for i, e := range evs {
		err := f.l.Respond(e.Fd, true)
		processed := (i+1)*responseLen <= n
		switch {
		case processed && !errors.Is(err, unix.ENOENT):
			t.Errorf("response %d was processed by the batch, answering again: %v, want ENOENT", i, err)
		case !processed && err != nil:
			t.Errorf("response %d was left by the batch, answering it: %v", i, err)
		}
	}
	if err := cx.Wait(); err != nil || outx.String() != "x\n" {
		t.Errorf("cat x: %v %q", err, outx)
	}
	if err := cy.Wait(); err != nil || outy.String() != "y\n" {
		t.Errorf("cat y: %v %q", err, outy)
	}
}

func TestRespondAll(t *testing.T) {
	testutil.CheckFDLeaks(t)
	files := map[string]string{}
	for i := range 5 {
		files["f"+strconv.Itoa(i)] = "content\n"
	}
	f := setup(t, Options{}, OpenPerm, files)
	cmds := map[string]*exec.Cmd{}
	for name := range files {
		cmds[name], _ = startClient(t, "cat", f.path(name))
	}
	evs := readPerm(t, f.l, len(files))
	defer closeAll(evs)
	var rs []Response
	for _, e := range evs {
		var buf [unix.PathMax]byte
		p, err := PathOf(e.Fd, buf[:])
		if err != nil {
			t.Fatal(err)
		}
		v := Allow
		if filepath.Base(string(p)) == "f0" {
			v = Deny
		}
		rs = append(rs, Response{Fd: e.Fd, Verdict: v})
	}
	// A stale fd and an invalid verdict in the middle do not stop the rest.
	rs = append(rs[:2:2], append([]Response{{Fd: 99999, Verdict: Allow}, {Fd: 99998, Verdict: 7}}, rs[2:]...)...)
	err := f.l.RespondAll(rs)
	var fe *Error
	if !errors.As(err, &fe) || fe.Errno != unix.ENOENT {
		if err == nil || !strings.Contains(err.Error(), "invalid verdict") {
			t.Errorf("RespondAll with a stale fd: %v, want ENOENT or invalid verdict", err)
		}
	}
	for name, cmd := range cmds {
		err := cmd.Wait()
		if (name == "f0") != (err != nil) {
			t.Errorf("cat %s: %v", name, err)
		}
	}
}

func TestSelfEventsSkipHandler(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"mine": "own\n"})
	var calls atomic.Int32
	serve(t, f.l, func(e *Event) Verdict {
		calls.Add(1)
		return Deny
	}, HandleOptions{})

	done := make(chan error, 1)
	go func() {
		b, err := os.ReadFile(f.path("mine"))
		if err == nil && string(b) != "own\n" {
			err = fmt.Errorf("read %q", b)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("own open: %v", err)
		}
	case <-time.After(clientTimeout):
		f.l.Close() // releases the open
		t.Fatal("own open was not answered")
	}
	if calls.Load() != 0 {
		t.Fatalf("handler called %d times for own opens", calls.Load())
	}
	_, stderr, err := client(t, "cat", f.path("mine"))
	wantDenied(t, stderr, err)
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times for a child's open, want 1", calls.Load())
	}
}

func TestHandlerPanic(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"boom": "x\n"})
	stop := serve(t, f.l, func(e *Event) Verdict { panic("handler bug") }, HandleOptions{FailVerdict: Deny})

	_, stderr, err := client(t, "cat", f.path("boom"))
	wantDenied(t, stderr, err) // answered with the failure verdict
	var pe *PanicError
	if err := stop(); !errors.As(err, &pe) || pe.Value != "handler bug" || len(pe.Stack) == 0 {
		t.Fatalf("Handle after a panic: %v", err)
	}
}

func TestPidFd(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"p": "p\n"})
	if !f.l.Features().PidFd {
		t.Fatal("FAN_REPORT_PIDFD not in use; this kernel (6.18) has it")
	}
	type result struct {
		pid       int32
		fdinfoPid string
	}
	res := make(chan result, 4)
	serve(t, f.l, func(e *Event) Verdict {
		r := result{pid: e.Pid}
		if e.PidFd >= 0 {
			b, _ := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(e.PidFd)))
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "Pid:"); ok {
					r.fdinfoPid = strings.TrimSpace(v)
				}
			}
		}
		res <- r
		return Allow
	}, HandleOptions{})
	cmd, _ := startClient(t, "cat", f.path("p"))
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.pid != int32(cmd.Process.Pid) || r.fdinfoPid != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("event pid %d, pidfd refers to %q; want %d", r.pid, r.fdinfoPid, cmd.Process.Pid)
	}

	g, err := Open(Options{NoPidFd: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Features().PidFd {
		t.Error("NoPidFd ignored")
	}
}

func TestFilesystemMarkCoversBindMounts(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, 0, map[string]string{"f": "f\n"})
	bind := filepath.Join(t.TempDir(), "bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(f.dir, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(bind, unix.MNT_DETACH) })

	r := &recorder{deny: map[string]bool{"f": true}}
	serve(t, f.l, r.handle, HandleOptions{})

	// A mount mark on the original mount misses the bind mount.
	if err := f.l.MarkMount(f.dir, OpenPerm); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := client(t, "cat", filepath.Join(bind, "f")); err != nil {
		t.Fatalf("cat through bind with a mount mark: %v %s", err, stderr)
	}
	// A filesystem mark covers it.
	if err := f.l.MarkFilesystem(f.dir, OpenPerm); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := client(t, "cat", filepath.Join(bind, "f"))
	wantDenied(t, stderr, err)
}

func TestErrors(t *testing.T) {
	f := setup(t, Options{}, 0, nil)
	err := f.l.MarkMount(filepath.Join(f.dir, "missing"), OpenPerm)
	var fe *Error
	if !errors.As(err, &fe) || fe.Errno != unix.ENOENT || fe.Op != "fanotify_mark" || !strings.HasSuffix(fe.Path, "missing") {
		t.Fatalf("mark of a missing path: %#v", err)
	}
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrNotSupported) {
		t.Fatalf("errors.Is on %v", err)
	}
	if err := f.l.MarkMount("", OpenPerm); err == nil {
		t.Fatal("mark of an empty path succeeded")
	}
	if !errors.Is(&Error{Op: "fanotify_mark", Errno: unix.EOPNOTSUPP}, ErrNotSupported) {
		t.Fatal("EOPNOTSUPP does not match ErrNotSupported")
	}
	if !errors.Is(&Error{Op: "fanotify_init", Errno: unix.EPERM}, os.ErrPermission) {
		t.Fatal("EPERM does not match os.ErrPermission")
	}
	if _, err := PathOf(0, make([]byte, 1)); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("PathOf with a tiny buffer: %v", err)
	}
}

func TestPathOfAllocs(t *testing.T) {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fd := int32(fh.Fd())
	var buf [unix.PathMax]byte
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := PathOf(fd, buf[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := Stat(fd); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("PathOf and Stat: %v allocs per call, want 0", allocs)
	}
	if p, _ := PathOf(fd, buf[:]); !strings.HasSuffix(string(p), "/status") {
		t.Fatalf("PathOf = %q", p)
	}
}

func TestNoFDLeaksUnderLoad(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm|OpenExecPerm, map[string]string{"a": "a\n", "b": "b\n"})
	r := &recorder{deny: map[string]bool{"b": true}}
	serve(t, f.l, r.handle, HandleOptions{BufferSize: 512})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := "a"
			if i%2 == 1 {
				name = "b"
			}
			client(t, "cat", f.path(name))
		})
	}
	wg.Wait()
	if r.count("a", OpenPerm) != 10 || r.count("b", OpenPerm) != 10 {
		t.Fatalf("got %d and %d events, want 10 each", r.count("a", OpenPerm), r.count("b", OpenPerm))
	}
}

// TestIgnoreProbe checks the premise of probeIgnoreFlags: fanotify_mark
// rejects unknown flags with EINVAL before it resolves the object, and
// known ones get as far as the bad dirfd (EBADF).
func TestIgnoreProbe(t *testing.T) {
	f := setup(t, Options{}, 0, nil)
	probe := func(flags uint) error {
		return f.l.control(func(fd int) error {
			return unix.FanotifyMark(fd, unix.FAN_MARK_ADD|flags, OpenPerm, -1, "")
		})
	}
	if err := probe(0x4000_0000); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("unknown flag: %v, want EINVAL", err)
	}
	for _, fl := range ignoreFlavours {
		if err := probe(fl); !errors.Is(err, unix.EBADF) {
			t.Errorf("flags %#x: %v, want EBADF (known on 6.18)", fl, err)
		}
	}
	want := uint(unix.FAN_MARK_IGNORE | unix.FAN_MARK_IGNORED_SURV_MODIFY | unix.FAN_MARK_EVICTABLE)
	if got := f.l.Features().IgnoreFlags; got != want {
		t.Errorf("IgnoreFlags = %#x, want %#x on 6.18", got, want)
	}
}

// TestIgnoreOnMarkedInode: an inode that already has a (non-evictable)
// inode mark gets the ignore mask without FAN_MARK_EVICTABLE, and the
// ignore mask wins over the mark's own mask.
func TestIgnoreOnMarkedInode(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, 0, map[string]string{"i": "i\n"})
	if err := f.l.MarkInode(f.path("i"), OpenPerm); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	serve(t, f.l, r.handle, HandleOptions{})
	if _, _, err := client(t, "cat", f.path("i")); err != nil {
		t.Fatal(err)
	}
	raw := f.l.control(func(fd int) error {
		return unix.FanotifyMark(fd, unix.FAN_MARK_ADD|f.l.Features().IgnoreFlags, OpenPerm, unix.AT_FDCWD, f.path("i"))
	})
	if f.l.Features().IgnoreFlags&unix.FAN_MARK_EVICTABLE != 0 && !errors.Is(raw, unix.EEXIST) {
		t.Fatalf("evictable ignore mark on a marked inode: %v, want EEXIST", raw)
	}
	if err := f.l.Ignore(f.path("i"), OpenPerm); err != nil {
		t.Fatalf("Ignore on a marked inode: %v", err)
	}
	if _, _, err := client(t, "cat", f.path("i")); err != nil {
		t.Fatal(err)
	}
	if n := r.count("i", OpenPerm); n != 1 {
		t.Fatalf("%d events, want 1 (before the ignore mark only)", n)
	}
}

// TestQueueOverflow overflows the queue with notification events (FAN_OPEN
// of distinct files by one child, which the kernel does not merge and the
// child does not wait on) and checks that Handle reports the overflow.
func TestQueueOverflow(t *testing.T) {
	testutil.CheckFDLeaks(t)
	b, err := os.ReadFile("/proc/sys/fs/fanotify/max_queued_events")
	if err != nil {
		t.Skipf("queue limit unknown: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || limit > 20000 {
		t.Skipf("queue limit %q too large to overflow quickly", b)
	}
	f := setup(t, Options{}, 0, nil)
	files := filepath.Join(f.dir, "many")
	if err := os.Mkdir(files, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range limit + 100 {
		if err := os.WriteFile(filepath.Join(files, strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.l.MarkMount(f.dir, unix.FAN_OPEN); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := client(t, "sh", "-c", `for f in "$1"/*; do : < "$f"; done`, "sh", files); err != nil {
		t.Fatalf("opener: %v %s", err, stderr)
	}

	var overflows, events atomic.Int32
	serve(t, f.l, func(e *Event) Verdict {
		events.Add(1)
		return Allow
	}, HandleOptions{Overflow: func() { overflows.Add(1) }})
	deadline := time.Now().Add(clientTimeout)
	for overflows.Load() == 0 || events.Load() < int32(limit) {
		if time.Now().After(deadline) {
			t.Fatalf("after %d events, %d overflows; want %d events and an overflow", events.Load(), overflows.Load(), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d events then %d overflow event(s)", events.Load(), overflows.Load())
}

func TestAuditVerdict(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{EnableAudit: true}, OpenPerm, map[string]string{"audited": "a\n"})
	if !f.l.Features().Audit {
		t.Fatal("Features().Audit false with EnableAudit")
	}
	serve(t, f.l, func(e *Event) Verdict { return Deny | Audit }, HandleOptions{})
	_, stderr, err := client(t, "cat", f.path("audited"))
	wantDenied(t, stderr, err)
}

// TestHandlerMistakes: a handler that closes the event itself, or returns
// no verdict, still gets its event answered once and closed once.
func TestHandlerMistakes(t *testing.T) {
	testutil.CheckFDLeaks(t)
	f := setup(t, Options{}, OpenPerm, map[string]string{"closed": "c\n", "zero": "z\n"})
	serve(t, f.l, func(e *Event) Verdict {
		var buf [unix.PathMax]byte
		p, _ := PathOf(e.Fd, buf[:])
		if filepath.Base(string(p)) == "closed" {
			if err := e.Close(); err != nil {
				t.Errorf("Close in handler: %v", err)
			}
			return Deny
		}
		return 0 // not a verdict: FailVerdict applies
	}, HandleOptions{FailVerdict: Deny})
	_, stderr, err := client(t, "cat", f.path("closed"))
	wantDenied(t, stderr, err)
	_, stderr, err = client(t, "cat", f.path("zero"))
	wantDenied(t, stderr, err)
}

// TestSpinningListener: a listener that spins before parking still
// decides every event and still stops when closed.
func TestSpinningListener(t *testing.T) {
	testutil.RequireFanotify(t)
	dir := testutil.MountTmpfs(t)
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{Spin: 200 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.MarkFilesystem(dir, OpenPerm); err != nil {
		l.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- l.Handle(context.Background(), func(e *Event) Verdict { return Deny }, HandleOptions{})
	}()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "cat", file).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "Operation not permitted") {
			t.Fatalf("open %d through a spinning listener: %v %q", i, err, out)
		}
	}
	// One open per process started: the events are far apart, every spin
	// ran out, and the listener stopped spinning.
	if b := time.Duration(l.budget.Load()); b >= 200*time.Microsecond {
		t.Errorf("spin budget %v after 20 sparse events, want it lowered", b)
	}
	l.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Handle did not return after Close")
	}
}

func TestAdaptSpin(t *testing.T) {
	const max = 200 * time.Microsecond
	l := &Listener{spin: max}
	for _, c := range []struct {
		name        string
		budget, gap time.Duration
		parked      bool
		want        time.Duration
	}{
		{"a spin that ran out halves", max, -1, false, max / 2},
		{"down to nothing", 3 * time.Microsecond, -1, false, 0},
		{"an event caught by the spin keeps the budget", max, 10 * time.Microsecond, false, max},
		{"an event soon after parking raises it", 0, 30 * time.Microsecond, true, 60 * time.Microsecond},
		{"to at most the maximum", 20 * time.Microsecond, 150 * time.Microsecond, true, max},
		{"a spin too short for the next event grows", 10 * time.Microsecond, 40 * time.Microsecond, true, 80 * time.Microsecond},
		{"an event long after parking changes nothing", 5 * time.Microsecond, time.Millisecond, true, 5 * time.Microsecond},
	} {
		l.budget.Store(int64(c.budget))
		l.adaptSpin(c.budget, c.gap, c.parked)
		if got := time.Duration(l.budget.Load()); got != c.want {
			t.Errorf("%s: budget %v, want %v", c.name, got, c.want)
		}
	}
}

// BenchmarkAppendResponse: encoding a batch of 64 answers (struct
// fanotify_response) for one write, as RespondAll does.
//
//	go test -run '^$' -bench AppendResponse -benchmem ./internal/fanotify/
func BenchmarkAppendResponse(b *testing.B) {
	var buf [maxBatch * responseLen]byte
	rs := make([]Response, maxBatch)
	for i := range rs {
		rs[i] = Response{Fd: int32(i + 3), Verdict: Allow}
		if i%3 == 0 {
			rs[i].Verdict = Deny | Audit
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		out := buf[:0]
		for _, r := range rs {
			out = appendResponse(out, r, true)
		}
		if len(out) != maxBatch*responseLen {
			b.Fatalf("%d bytes", len(out))
		}
	}
}
