package fanotify

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStatHandleFollowsTheFile: the child handle of a name event finds the
// file after later renames (by identity, not name), and fails with ESTALE
// once its last name is gone. A handle of another filesystem is refused;
// WatchesDevice knows which filesystems are watched.
func TestStatHandleFollowsTheFile(t *testing.T) {
	f := setupWatch(t, WatchOptions{}, nil)
	if !f.w.Features().ChildFID {
		t.Skip("kernel reports no child handles (before Linux 5.17)")
	}
	must(t, os.WriteFile(f.path("a"), []byte("x"), 0o644))
	evs := f.expect(t, want{mask: Create, dir: f.dir, name: "a", ino: ino(t, f.path("a")), nlink: 1})
	h := evs[0].Child
	if !h.Valid() {
		t.Fatalf("Create event without a child handle: %+v", evs[0])
	}
	want := FileStat{Dev: evs[0].Dev, Ino: evs[0].Ino}

	must(t, os.Mkdir(f.path("elsewhere"), 0o755))
	must(t, os.Rename(f.path("a"), f.path("elsewhere", "b")))
	evs = f.read(t, 3) // Create of the directory, MovedFrom, MovedTo
	for _, e := range evs[1:] {
		if e.Child != h {
			t.Errorf("%#x event of the same file with another handle: %+v", e.Mask, e.Child)
		}
	}
	st, err := f.w.StatHandle(h)
	if err != nil || st.Dev != want.Dev || st.Ino != want.Ino {
		t.Fatalf("StatHandle after a rename: %+v, %v; want dev %d ino %d", st, err, want.Dev, want.Ino)
	}

	must(t, os.Remove(f.path("elsewhere", "b")))
	f.read(t, 1)
	if _, err := f.w.StatHandle(h); !errors.Is(err, unix.ESTALE) {
		t.Errorf("StatHandle of a deleted file: %v, want ESTALE", err)
	}

	if d := dev(t, f.dir); !f.w.WatchesDevice(d) || f.w.WatchesDevice(d+1) {
		t.Errorf("WatchesDevice(%d) = %v, WatchesDevice(%d) = %v; want true, false", d, f.w.WatchesDevice(d), d+1, f.w.WatchesDevice(d+1))
	}
	other := h
	other.Fsid[0]++
	if _, err := f.w.StatHandle(other); !errors.Is(err, unix.ENOENT) {
		t.Errorf("StatHandle on an unwatched filesystem: %v, want ENOENT", err)
	}
	if _, err := f.w.StatHandle(Handle{}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("StatHandle of the zero Handle: %v, want EINVAL", err)
	}
}
