package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/fanotify"
)

func handleFor(ino uint64) fanotify.Handle {
	return fanotify.Handle{Fsid: [2]int32{1, 2}, Type: 1, Bytes: fmt.Sprintf("gen-%08d-%04d", ino, 1)}
}

// frozenOf builds a frozen table of (dev 1) files: ino -> path.
func frozenOf(files map[uint64]string) *frozenIndex {
	b := newFrozenBuilder()
	for ino, p := range files {
		dir, base := splitPath(p)
		b.add(1, ino, dir, base)
	}
	return b.build()
}

// A file kept by identity is found by identity only, decided as the name
// it had; a new file under that name is another file; learning it under a
// protected name indexes it by that name again.
func TestIdentityIndexKeepsRenamedOutFilesByIdentity(t *testing.T) {
	x := newIdentityIndex(100)
	x.frozen = frozenOf(map[uint64]string{10: "/p/secret/a", 11: "/p/secret/b"})
	x.learn(1, 12, "/p/secret/c")

	// Not indexed: nothing happens.
	if x.keepByIdentity(1, 99, handleFor(99)); len(x.out) != 0 {
		t.Fatalf("an unknown file was kept: %v", x.out)
	}
	x.keepByIdentity(1, 10, handleFor(10)) // from the frozen table
	x.keepByIdentity(1, 12, handleFor(12)) // from the learned maps
	for ino, want := range map[uint64]string{10: "/p/secret/a", 12: "/p/secret/c"} {
		if got, ok := x.lookup(1, ino); !ok || got != want {
			t.Errorf("lookup(1, %d) = %q, %v; want %q", ino, got, ok, want)
		}
	}
	if x.len() != 3 || len(x.out) != 2 || len(x.t.files) != 0 || x.frozenLen() != 1 {
		t.Errorf("%d entries (%d out, %d learned, %d frozen), want 3 (2, 0, 1)", x.len(), len(x.out), len(x.t.files), x.frozenLen())
	}
	// Another file takes the old name: both are protected, each as itself.
	x.learn(1, 20, "/p/secret/a")
	x.forgetPath("/p/secret/a")
	if got, ok := x.lookup(1, 10); !ok || got != "/p/secret/a" {
		t.Errorf("after the old name was reused and deleted: %q, %v", got, ok)
	}
	// Deciding it learns it under the name it is decided as: no change.
	x.learn(1, 10, "/p/secret/a")
	if _, ok := x.out[fileKey{1, 10}]; !ok {
		t.Error("a decision took the file out of the kept set")
	}
	// Renamed back into a protected place.
	x.learn(1, 10, "/p/secret/back")
	if got, _ := x.lookup(1, 10); got != "/p/secret/back" || len(x.out) != 1 {
		t.Errorf("after moving back: %q, %d kept", got, len(x.out))
	}
}

// sawChild drops a kept file whose inode number shows up with another
// handle (the number belongs to a new file), and gives a handle to one
// kept without.
func TestIdentityIndexSawChild(t *testing.T) {
	x := newIdentityIndex(100)
	x.out[fileKey{1, 5}] = outFile{path: "/p/secret/five", handle: handleFor(5)}
	x.out[fileKey{1, 6}] = outFile{path: "/p/secret/six"}
	x.sawChild(1, 5, handleFor(5))
	if _, ok := x.lookup(1, 5); !ok {
		t.Fatal("the same handle dropped the file")
	}
	other := handleFor(5)
	other.Bytes += "x"
	x.sawChild(1, 5, other)
	if _, ok := x.lookup(1, 5); ok {
		t.Error("a file with the same inode number and another handle is still decided as the kept one")
	}
	x.sawChild(1, 6, handleFor(6))
	if o := x.out[fileKey{1, 6}]; o.handle != handleFor(6) {
		t.Errorf("unverified entry did not take the handle: %+v", o)
	}
}

// The bound: out never holds more than outCap; past it a file stays
// indexed under its name, and the first refusal is reported once.
func TestIdentityIndexKeptIsBounded(t *testing.T) {
	x := newIdentityIndex(100)
	x.outCap = 2
	for i := range 4 {
		x.learn(1, uint64(i), fmt.Sprintf("/p/secret/%d", i))
	}
	var reported int
	for i := range 4 {
		if x.keepByIdentity(1, uint64(i), handleFor(uint64(i))) {
			reported++
		}
	}
	if len(x.out) != 2 || reported != 1 || x.len() != 4 {
		t.Errorf("%d kept, reported %d times, %d indexed; want 2, 1, 4", len(x.out), reported, x.len())
	}
}

// carryOver: what a walk that did not find them keeps of the old index.
func TestIdentityIndexCarryOver(t *testing.T) {
	dir := t.TempDir()
	here := filepath.Join(dir, "here") // still under its indexed name
	if err := os.WriteFile(here, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(here, &st); err != nil {
		t.Fatal(err)
	}
	dev := uint64(st.Dev)
	x := newIdentityIndex(100)
	x.learn(dev, st.Ino, here)
	x.learn(dev, 900001, filepath.Join(dir, "gone")) // its name leads nowhere now
	x.learn(dev, 900002, "/elsewhere/uncovered")     // no longer covered
	x.out[fileKey{dev, 900003}] = outFile{path: filepath.Join(dir, "alive"), handle: handleFor(3)}
	x.out[fileKey{dev, 900004}] = outFile{path: filepath.Join(dir, "dead"), handle: handleFor(4)}
	x.out[fileKey{dev, 900005}] = outFile{path: filepath.Join(dir, "unverified")}
	x.out[fileKey{dev, 900006}] = outFile{path: filepath.Join(dir, "renamed"), handle: handleFor(6)}
	names := &fakeNames{dev: dev, stat: func(h fanotify.Handle) (fanotify.FileStat, error) {
		switch h {
		case handleFor(3):
			return fanotify.FileStat{Dev: dev, Ino: 900003}, nil
		case handleFor(6):
			return fanotify.FileStat{}, fmt.Errorf("some other failure") // kept
		}
		return fanotify.FileStat{}, &fanotify.Error{Op: "open_by_handle_at", Errno: unix.ESTALE}
	}}
	x.attach(names, nil)
	covered := func(p string) bool { return strings.HasPrefix(p, dir) }
	f := newFrozenBuilder().build()
	c := x.carryOver(f, 0, covered)
	x.mu.Lock()
	c.mergeLate(x, f, covered)
	x.mu.Unlock()
	if _, ok := c.t.files[fileKey{dev, st.Ino}]; !ok || len(c.t.files) != 1 {
		t.Errorf("learned after the walk: %v, want only %s", c.t.files, here)
	}
	want := map[uint64]bool{900001: false, 900003: true, 900005: false, 900006: true} // ino -> has a handle
	if len(c.out) != len(want) {
		t.Errorf("kept %v, want %v", c.out, want)
	}
	for ino, handle := range want {
		o, ok := c.out[fileKey{dev, ino}]
		if !ok || o.handle.Valid() != handle {
			t.Errorf("inode %d: kept %v (%+v), want kept with handle %v", ino, ok, o, handle)
		}
	}

	// Where name changes are not watched (no name watcher, or not this
	// filesystem), a file whose name leads nowhere is let go.
	names.dev = dev + 1
	c = x.carryOver(f, 0, covered)
	if _, ok := c.out[fileKey{dev, 900001}]; ok {
		t.Error("on an unwatched filesystem, a file whose name is gone was kept")
	}
	x.attach(nil, nil)
	c = x.carryOver(f, 0, covered)
	if _, ok := c.out[fileKey{dev, 900001}]; ok {
		t.Error("without a name watcher, a file whose name is gone was kept")
	}
}

// fakeNames is a name watcher watching the filesystem dev.
type fakeNames struct {
	dev  uint64
	stat func(fanotify.Handle) (fanotify.FileStat, error)
}

func (n *fakeNames) StatHandle(h fanotify.Handle) (fanotify.FileStat, error) { return n.stat(h) }
func (n *fakeNames) WatchesDevice(dev uint64) bool                           { return dev == n.dev }

// mergeLate: a file the walk found, renamed out while carryOver ran without
// the lock, ends up kept by identity in the new index.
func TestIdentityIndexMergeLate(t *testing.T) {
	x := newIdentityIndex(100)
	x.attach(&fakeNames{dev: 1, stat: func(fanotify.Handle) (fanotify.FileStat, error) { return fanotify.FileStat{}, nil }}, nil)
	x.frozen = frozenOf(map[uint64]string{1: "/p/a", 2: "/p/b"})
	walked := frozenOf(map[uint64]string{1: "/p/a", 2: "/p/b"})
	covered := func(string) bool { return true }
	c := x.carryOver(walked, 2, covered)
	x.keepByIdentity(1, 1, handleFor(1)) // meanwhile
	x.learn(1, 3, "/p/new")              // meanwhile
	x.mu.Lock()
	c.mergeLate(x, walked, covered)
	x.mu.Unlock()
	if _, ok := walked.find(1, 1); ok {
		t.Error("the walked entry of the file renamed out meanwhile is still there")
	}
	if o, ok := c.out[fileKey{1, 1}]; !ok || o.path != "/p/a" {
		t.Errorf("file renamed out meanwhile: %+v, %v", o, ok)
	}
	if _, ok := c.t.files[fileKey{1, 3}]; !ok {
		t.Error("file learned meanwhile was lost")
	}
}

// BenchmarkIdentityIndexMemoryKept reports the heap that files kept by
// identity cost (paths as long as BenchmarkIdentityIndexMemory's, 12-byte
// handles as tmpfs gives), for outCap of them.
//
//	go test -run '^$' -bench IdentityIndexMemory -benchtime 1x ./internal/agent/
func BenchmarkIdentityIndexMemoryKept(b *testing.B) {
	var perFile float64
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		x := newIdentityIndex(maxIndexed)
		for i := range outCap {
			ino := uint64(1000 + i)
			x.out[fileKey{42, ino}] = outFile{
				path:   fmt.Sprintf("/tmp/drm-memory.Ab3dEf/t/srv/dept%d/docs/f%04d", i/1000+1, i%1000),
				handle: fanotify.Handle{Fsid: [2]int32{7, 9}, Type: 1, Bytes: string(fmt.Appendf(nil, "%012d", ino))},
			}
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		perFile = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(x.out))
		runtime.KeepAlive(x)
		b.StartTimer()
	}
	b.ReportMetric(perFile, "heapB/file")
	b.ReportMetric(perFile*outCap/1e6, "heapMB/outCap")
}

// BenchmarkWalkCarryOver is what a walk now adds to a reload of 1,000,000
// protected files when nothing moved: every file of the old index is
// looked up in the new one.
//
//	go test -run '^$' -bench WalkCarryOver -benchtime 3x ./internal/agent/
func BenchmarkWalkCarryOver(b *testing.B) {
	build := func() *frozenIndex {
		fb := newFrozenBuilder()
		ino := uint64(1000)
		for d := range 1000 {
			dir := fmt.Sprintf("/tmp/drm-memory.Ab3dEf/t/srv/dept%d/docs", d+1)
			for f := range 1000 {
				fb.add(42, ino, dir, fmt.Sprintf("f%04d", f))
				ino++
			}
		}
		return fb.build()
	}
	x := newIdentityIndex(maxIndexed)
	x.frozen = build()
	f := build()
	covered := func(string) bool { return true }
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		c := x.carryOver(f, f.alive, covered)
		if len(c.out)+len(c.t.files) != 0 {
			b.Fatalf("carried %d files, want none", len(c.out)+len(c.t.files))
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/walk")
}
