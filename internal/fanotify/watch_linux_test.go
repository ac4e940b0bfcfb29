package fanotify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Safety: a Watcher is a notification group, nobody ever waits on it; still
// these tests mark only a tmpfs they mount themselves. Waits are bounded by
// a context deadline, never by sleeping.

const watchTimeout = 5 * time.Second

// watchFixture is a Watcher on a private tmpfs.
type watchFixture struct {
	w   *Watcher
	dir string // the tmpfs, symlinks resolved
	pid int32
	buf []NameEvent
}

// setupWatch checks for descriptor leaks, mounts a tmpfs, runs prepare on
// it before anything is watched, and watches it with a Watcher closed in
// t.Cleanup.
func setupWatch(t testing.TB, opts WatchOptions, prepare func(dir string)) *watchFixture {
	t.Helper()
	testutil.RequireFanotify(t)
	testutil.CheckFDLeaks(t)
	dir := testutil.MountTmpfs(t)
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(dir)
	}
	w, err := OpenWatcher(opts)
	if err != nil {
		t.Fatalf("OpenWatcher: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := w.WatchFilesystem(dir); err != nil {
		t.Fatalf("WatchFilesystem: %v", err)
	}
	return &watchFixture{w: w, dir: dir, pid: int32(os.Getpid())}
}

func (f *watchFixture) path(elem ...string) string {
	return filepath.Join(append([]string{f.dir}, elem...)...)
}

// want is an expected NameEvent. ino 0 means the child must be unknown;
// anyIno accepts any child.
type want struct {
	mask   uint64
	dir    string
	name   string
	ino    uint64
	anyIno bool
	nlink  uint64 // checked when not 0
	err    error  // errors.Is target, or nil for no error
}

func (w want) String() string {
	return fmt.Sprintf("{mask %#x dir %q name %q ino %d}", w.mask, w.dir, w.name, w.ino)
}

// read collects at least n events within watchTimeout.
func (f *watchFixture) read(t testing.TB, n int) []NameEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), watchTimeout)
	defer cancel()
	var got []NameEvent
	for len(got) < n {
		var err error
		f.buf, err = f.w.Read(ctx, f.buf)
		got = append(got, f.buf...)
		if err != nil {
			t.Fatalf("Read after %d of %d events %s: %v", len(got), n, describe(got), err)
		}
	}
	return got
}

// expect reads exactly the events wants, in order.
func (f *watchFixture) expect(t *testing.T, wants ...want) []NameEvent {
	t.Helper()
	got := f.read(t, len(wants))
	if len(got) != len(wants) {
		t.Fatalf("got %d events %s, want %v", len(got), describe(got), wants)
	}
	for i, w := range wants {
		checkEvent(t, i, got[i], w, f.pid)
	}
	return got
}

func checkEvent(t *testing.T, i int, e NameEvent, w want, pid int32) {
	t.Helper()
	ok := e.Mask == w.mask && e.Dir == w.dir && e.Name == w.name &&
		(w.anyIno || e.Ino == w.ino) && (w.nlink == 0 || e.Nlink == w.nlink) &&
		e.Pid == pid
	if w.err == nil {
		ok = ok && e.Err == nil
	} else {
		ok = ok && errors.Is(e.Err, w.err)
	}
	if e.Ino != 0 && e.Dev == 0 {
		ok = false
	}
	if !ok {
		t.Errorf("event %d: got %s, want %v (pid %d)", i, describe([]NameEvent{e}), w, pid)
	}
}

func describe(evs []NameEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n\t{mask %#x pid %d dir %q name %q dev %d ino %d nlink %d err %v}",
			e.Mask, e.Pid, e.Dir, e.Name, e.Dev, e.Ino, e.Nlink, e.Err)
	}
	return b.String()
}

func ino(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func dev(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Dev)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWatchNameEvents walks a file through create, hard link, rename into a
// subdirectory, rename out, and delete, reading after each step (so that
// the kernel has nothing queued to merge with), and checks each event's
// directory, name and child identity.
func TestWatchNameEvents(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, nil)
	if !f.w.Features().ChildFID {
		t.Fatalf("features %+v: want ChildFID on Linux 6.18", f.w.Features())
	}
	t.Logf("fanotify_init flags %#x", f.w.Features().InitFlags)
	root, sub := f.dir, f.path("sub")

	must(t, os.Mkdir(sub, 0o755))
	f.expect(t, want{mask: Create | OnDir, dir: root, name: "sub", ino: ino(t, sub)})

	must(t, os.WriteFile(f.path("f"), []byte("x"), 0o644))
	fi := ino(t, f.path("f"))
	evs := f.expect(t, want{mask: Create, dir: root, name: "f", ino: fi, nlink: 1})
	if evs[0].Dev != dev(t, root) {
		t.Errorf("dev %d, want %d", evs[0].Dev, dev(t, root))
	}
	if p := evs[0].Path(); p != f.path("f") {
		t.Errorf("Path() = %q", p)
	}

	must(t, os.Link(f.path("f"), f.path("g")))
	f.expect(t, want{mask: Create, dir: root, name: "g", ino: fi, nlink: 2})

	must(t, os.Rename(f.path("f"), f.path("sub", "f")))
	f.expect(t,
		want{mask: MovedFrom, dir: root, name: "f", ino: fi},
		want{mask: MovedTo, dir: sub, name: "f", ino: fi})

	must(t, os.Rename(f.path("sub", "f"), f.path("h")))
	f.expect(t,
		want{mask: MovedFrom, dir: sub, name: "f", ino: fi},
		want{mask: MovedTo, dir: root, name: "h", ino: fi})

	// Still linked as g: the child's handle opens.
	must(t, os.Remove(f.path("h")))
	f.expect(t, want{mask: Delete, dir: root, name: "h", ino: fi, nlink: 1})

	// The last link: the handle is stale by the time the event is read.
	must(t, os.Remove(f.path("g")))
	evs = f.expect(t, want{mask: Delete, dir: root, name: "g", anyIno: true})
	if evs[0].Ino != 0 && evs[0].Ino != fi {
		t.Errorf("deleted child ino %d, want 0 or %d", evs[0].Ino, fi)
	}
	t.Logf("child of the last unlink: ino %d", evs[0].Ino)

	// A symlink is identified itself, not its target.
	must(t, os.Symlink("sub", f.path("s")))
	f.expect(t, want{mask: Create, dir: root, name: "s", ino: ino(t, f.path("s"))})

	// A directory moved into another one.
	must(t, os.Mkdir(f.path("d"), 0o755))
	di := ino(t, f.path("d"))
	f.expect(t, want{mask: Create | OnDir, dir: root, name: "d", ino: di})
	must(t, os.Rename(f.path("d"), f.path("sub", "d")))
	f.expect(t,
		want{mask: MovedFrom | OnDir, dir: root, name: "d", ino: di},
		want{mask: MovedTo | OnDir, dir: sub, name: "d", ino: di})

	// Events read after their directory was removed: the name is known,
	// the directory is not.
	must(t, os.WriteFile(f.path("sub", "d", "x"), nil, 0o644))
	f.expect(t, want{mask: Create, dir: f.path("sub", "d"), name: "x", ino: ino(t, f.path("sub", "d", "x"))})
	must(t, os.Remove(f.path("sub", "d", "x")))
	must(t, os.Remove(f.path("sub", "d")))
	f.expect(t,
		want{mask: Delete, name: "x", err: unix.ESTALE}, // and x's last link is gone
		want{mask: Delete | OnDir, dir: sub, name: "d"})
}

// TestWatchBatchOrder makes changes to distinct names without reading in
// between and checks that one Read returns them in order.
func TestWatchBatchOrder(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, func(dir string) {
		must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
		for _, n := range []string{"p", "q", "r"} {
			must(t, os.WriteFile(filepath.Join(dir, n), nil, 0o644))
		}
	})
	root, sub := f.dir, f.path("sub")
	p, q := ino(t, f.path("p")), ino(t, f.path("q"))

	must(t, os.WriteFile(f.path("a"), nil, 0o644))
	must(t, os.Link(f.path("p"), f.path("p2")))
	must(t, os.Rename(f.path("q"), f.path("sub", "q2")))
	must(t, os.Remove(f.path("r")))
	must(t, os.Mkdir(f.path("e"), 0o755))

	f.expect(t,
		want{mask: Create, dir: root, name: "a", ino: ino(t, f.path("a"))},
		want{mask: Create, dir: root, name: "p2", ino: p, nlink: 2},
		want{mask: MovedFrom, dir: root, name: "q", ino: q},
		want{mask: MovedTo, dir: sub, name: "q2", ino: q},
		want{mask: Delete, dir: root, name: "r"},
		want{mask: Create | OnDir, dir: root, name: "e", ino: ino(t, f.path("e"))})
}

// TestWatchMergedEvents documents the kernel's merging: a create and an
// unlink of the same name and inode by the same process, both still
// queued, may arrive as one event with both bits.
func TestWatchMergedEvents(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, nil)
	must(t, os.WriteFile(f.path("m"), nil, 0o644))
	must(t, os.Remove(f.path("m")))
	got := f.read(t, 1)
	switch {
	case len(got) == 1:
		checkEvent(t, 0, got[0], want{mask: Create | Delete, dir: f.dir, name: "m"}, f.pid)
	case len(got) == 2:
		t.Logf("this kernel did not merge")
		checkEvent(t, 0, got[0], want{mask: Create, dir: f.dir, name: "m"}, f.pid)
		checkEvent(t, 1, got[1], want{mask: Delete, dir: f.dir, name: "m"}, f.pid)
	default:
		t.Fatalf("got %s", describe(got))
	}
}

// TestWatchWithoutTargetFID runs the fallback for kernels before 5.17: the
// child of a create is found by name, that of a delete is unknown.
func TestWatchWithoutTargetFID(t *testing.T) {
	f := setupWatch(t, WatchOptions{noTargetFID: true}, nil)
	if f.w.Features().ChildFID || f.w.Features().InitFlags&unix.FAN_REPORT_TARGET_FID != 0 {
		t.Fatalf("features %+v", f.w.Features())
	}
	must(t, os.WriteFile(f.path("f"), nil, 0o644))
	fi := ino(t, f.path("f"))
	f.expect(t, want{mask: Create, dir: f.dir, name: "f", ino: fi})
	must(t, os.Rename(f.path("f"), f.path("g")))
	f.expect(t,
		want{mask: MovedFrom, dir: f.dir, name: "f"},
		want{mask: MovedTo, dir: f.dir, name: "g", ino: fi})
	must(t, os.Remove(f.path("g")))
	f.expect(t, want{mask: Delete, dir: f.dir, name: "g"})
}

// TestWatchBindMount: a filesystem watch sees changes made through another
// mount of the filesystem, and names them through the watched mount.
func TestWatchBindMount(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, func(dir string) {
		must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	})
	bind := t.TempDir()
	must(t, unix.Mount(f.path("sub"), bind, "", unix.MS_BIND, ""))
	t.Cleanup(func() {
		if err := unix.Unmount(bind, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", bind, err)
		}
	})
	must(t, os.WriteFile(filepath.Join(bind, "b"), nil, 0o644))
	f.expect(t, want{mask: Create, dir: f.path("sub"), name: "b", ino: ino(t, f.path("sub", "b"))})
}

// TestWatchUnwatch: a second path of a watched filesystem adds nothing,
// Unwatch stops the events, and the filesystem can be watched again.
func TestWatchUnwatch(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, func(dir string) {
		must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	})
	must(t, f.w.WatchFilesystem(f.path("sub")))
	if err := f.w.WatchFilesystem(f.path("missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("watch of a missing path: %v", err)
	}
	must(t, os.WriteFile(f.path("one"), nil, 0o644))
	f.expect(t, want{mask: Create, dir: f.dir, name: "one", ino: ino(t, f.path("one"))})

	must(t, f.w.Unwatch(f.path("sub")))
	if err := f.w.Unwatch(f.dir); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second Unwatch: %v, want ENOENT", err)
	}
	must(t, os.WriteFile(f.path("unseen"), nil, 0o644))

	must(t, f.w.WatchFilesystem(f.dir))
	must(t, os.WriteFile(f.path("two"), nil, 0o644))
	f.expect(t, want{mask: Create, dir: f.dir, name: "two", ino: ino(t, f.path("two"))})
}

// TestWatchReadWakes: a blocked Read returns on context cancellation and on
// Close; calls after Close return ErrClosed.
func TestWatchReadWakes(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.w.Read(ctx, nil)
		errc <- err
	}()
	cancel()
	if err := waitErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel: %v", err)
	}

	// The deadline set to wake that Read must not stop the next one.
	must(t, os.WriteFile(f.path("after-cancel"), nil, 0o644))
	f.expect(t, want{mask: Create, dir: f.dir, name: "after-cancel", ino: ino(t, f.path("after-cancel"))})

	go func() {
		_, err := f.w.Read(context.Background(), nil)
		errc <- err
	}()
	must(t, f.w.Close())
	if err := waitErr(t, errc); err != ErrClosed {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := f.w.Read(context.Background(), nil); err != ErrClosed {
		t.Errorf("Read on closed watcher: %v", err)
	}
	if err := f.w.WatchFilesystem(f.dir); err != ErrClosed {
		t.Errorf("WatchFilesystem on closed watcher: %v", err)
	}
	if err := f.w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(watchTimeout):
		t.Fatal("Read did not return")
		return nil
	}
}

func TestWatchErrors(t *testing.T) {
	testutil.RequireFanotify(t)
	if _, err := OpenWatcher(WatchOptions{BufferSize: 100}); err == nil {
		t.Error("OpenWatcher accepted a 100-byte buffer")
	}
	w, err := OpenWatcher(WatchOptions{UnlimitedQueue: true, BufferSize: 4096})
	must(t, err)
	defer w.Close()
	if fl := w.Features().InitFlags; fl&unix.FAN_UNLIMITED_QUEUE == 0 {
		t.Errorf("init flags %#x lack FAN_UNLIMITED_QUEUE", fl)
	}
	if err := w.WatchFilesystem(""); !errors.Is(err, unix.ENOENT) {
		t.Errorf("empty path: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "file")
	must(t, err)
	f.Close()
	var fe *Error
	if err := w.WatchFilesystem(f.Name()); !errors.As(err, &fe) || fe.Errno != syscall.ENOTDIR || fe.Path != f.Name() {
		t.Errorf("regular file: %v", err)
	}
	if err := w.Unwatch(filepath.Dir(f.Name())); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Unwatch of an unwatched filesystem: %v", err)
	}
}

// TestWatchOverflow fills the queue without reading and checks that the
// events that fit arrive, then a QueueOverflow event.
func TestWatchOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/fanotify/max_queued_events")
	if err != nil {
		t.Skipf("queue limit unknown: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || limit > 20000 {
		t.Skipf("queue limit %q too large to overflow quickly", b)
	}
	f := setupWatch(t, WatchOptions{}, nil)
	for i := range limit + 100 {
		fd, err := unix.Open(f.path(strconv.Itoa(i)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		must(t, err)
		unix.Close(fd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*watchTimeout)
	defer cancel()
	var (
		events, overflows int
		evs               []NameEvent
	)
	for overflows == 0 {
		evs, err = f.w.Read(ctx, evs)
		if err != nil {
			t.Fatalf("after %d events: %v", events, err)
		}
		for _, e := range evs {
			switch {
			case e.IsOverflow():
				overflows++
				if e.Mask != QueueOverflow || e.Dir != "" || e.Name != "" || e.Err != nil {
					t.Errorf("overflow event %s", describe([]NameEvent{e}))
				}
			case overflows > 0:
				t.Errorf("event after the overflow: %s", describe([]NameEvent{e}))
			case e.Mask != Create || e.Name != strconv.Itoa(events) || e.Err != nil || e.Ino == 0:
				t.Fatalf("event %d: %s", events, describe([]NameEvent{e}))
			default:
				events++
			}
		}
	}
	if events != limit {
		t.Errorf("%d events before the overflow, want %d", events, limit)
	}
	// The queue works again after the overflow.
	must(t, os.WriteFile(f.path("later"), nil, 0o644))
	f.expect(t, want{mask: Create, dir: f.dir, name: "later", ino: ino(t, f.path("later"))})
}

// TestWatchSubtreeBind watches a filesystem through a bind mount of one of
// its subdirectories: events inside it are named through the bind mount,
// events outside carry ErrUnreachable rather than a wrong path (the kernel
// would name the directory "/").
func TestWatchSubtreeBind(t *testing.T) {
	testutil.RequireFanotify(t)
	testutil.CheckFDLeaks(t)
	dir := testutil.MountTmpfs(t)
	must(t, os.MkdirAll(filepath.Join(dir, "sub", "in"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "out"), 0o755))
	bind, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	must(t, unix.Mount(filepath.Join(dir, "sub"), bind, "", unix.MS_BIND, ""))
	t.Cleanup(func() {
		if err := unix.Unmount(bind, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", bind, err)
		}
	})
	w, err := OpenWatcher(WatchOptions{})
	must(t, err)
	t.Cleanup(func() { w.Close() })
	must(t, w.WatchFilesystem(bind))
	f := &watchFixture{w: w, dir: bind, pid: int32(os.Getpid())}

	must(t, os.WriteFile(filepath.Join(dir, "out", "x"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "y"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "in", "z"), nil, 0o644))
	f.expect(t,
		want{mask: Create, name: "x", err: ErrUnreachable, ino: ino(t, filepath.Join(dir, "out", "x"))},
		want{mask: Create, name: "y", err: ErrUnreachable, ino: ino(t, filepath.Join(dir, "y"))},
		want{mask: Create, dir: filepath.Join(bind, "in"), name: "z", ino: ino(t, filepath.Join(bind, "in", "z"))})
}

// TestWatchTwoFilesystems tells events of two watched filesystems apart by
// fsid, and events still queued for a filesystem that is then unwatched
// carry an error instead of a path.
func TestWatchTwoFilesystems(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, nil)
	other, err := filepath.EvalSymlinks(testutil.MountTmpfs(t))
	must(t, err)
	must(t, f.w.WatchFilesystem(other))

	must(t, os.WriteFile(f.path("a"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(other, "b"), nil, 0o644))
	f.expect(t,
		want{mask: Create, dir: f.dir, name: "a", ino: ino(t, f.path("a"))},
		want{mask: Create, dir: other, name: "b", ino: ino(t, filepath.Join(other, "b"))})

	must(t, os.WriteFile(filepath.Join(other, "queued"), nil, 0o644))
	must(t, f.w.Unwatch(other))
	got := f.read(t, 1)
	if len(got) != 1 || got[0].Name != "queued" || got[0].Err == nil || got[0].Dir != "" {
		t.Errorf("event queued before Unwatch: %s", describe(got))
	}
}

// BenchmarkWatchRead measures Read's cost per event (read, decode, resolve
// directory and child) for batches of creates in one directory.
func BenchmarkWatchRead(b *testing.B) {
	const batch = 256
	f := setupWatch(b, WatchOptions{}, nil)
	var (
		n   int
		evs []NameEvent
	)
	for b.Loop() {
		b.StopTimer()
		for range batch {
			fd, err := unix.Open(f.path(strconv.Itoa(n)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			must(b, err)
			unix.Close(fd)
			n++
		}
		b.StartTimer()
		for got := 0; got < batch; {
			var err error
			evs, err = f.w.Read(context.Background(), evs)
			must(b, err)
			got += len(evs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
