package fanotify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchInitFlags are the fanotify_init(2) flags every Watcher uses:
//
//   - FAN_CLASS_NOTIF: notification only; nobody ever waits on a Watcher.
//   - FAN_CLOEXEC, FAN_NONBLOCK: as for Listener (no leak into children;
//     the descriptor is handed to the Go runtime poller).
//
// One of the FID reporting modes is added; see OpenWatcher.
const watchInitFlags = unix.FAN_CLASS_NOTIF | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK

// watchEventFlags is fanotify_init's event_f_flags. FID groups open no
// descriptors per event; the value only has to be valid.
const watchEventFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_LARGEFILE

// watchMask is what WatchFilesystem asks for: every directory-entry change,
// of directories too. FAN_ATTRIB is left out on purpose: link(2) and
// unlink(2) already report Create and Delete with the name, while FAN_ATTRIB
// would add a nameless event for every chmod, chown, utimes and xattr change
// on the filesystem.
const watchMask = NameChanges | OnDir

// Buffer sizes of a Watcher.
const (
	defaultWatchBuffer = 64 << 10
	minWatchBuffer     = 4 << 10
	maxHandleSize      = 128 // MAX_HANDLE_SZ
)

// Watcher is a fanotify notification group with FID reporting that reports
// changes to directory entries (NameEvent) on whole filesystems. Its methods
// are safe for concurrent use; concurrent Reads are serialized.
//
// A Watcher keeps a descriptor of each watched filesystem open (the mount_fd
// of open_by_handle_at(2)), so the filesystem cannot be unmounted, except
// lazily, until Unwatch or Close; the garbage collector closes only the
// group descriptor, so always Close a Watcher. It needs CAP_SYS_ADMIN
// (filesystem marks) and CAP_DAC_READ_SEARCH (open_by_handle_at).
type Watcher struct {
	f        *os.File
	rc       syscall.RawConn
	features WatchFeatures
	closed   atomic.Bool

	// mu guards roots; Read holds it for reading while it resolves a
	// batch, so a root descriptor is not closed under it.
	mu    sync.RWMutex
	roots map[[2]int32]watchRoot

	// readMu serializes Read and guards the buffers below.
	readMu sync.Mutex
	buf    []byte
	raw    []FIDEvent
	hbuf   []byte // struct file_handle for open_by_handle_at
	pbuf   []byte // readlink result
	last   lastDir
}

// lastDir is the directory resolved for the previous event of a batch:
// events of one read often share their directory, which is then opened and
// named once. Paths are resolved when the batch is read either way.
type lastDir struct {
	ok     bool
	fsid   [2]int32
	htype  int32
	handle []byte // a copy
	fd     int    // O_PATH descriptor, or -1
	path   string
	err    error
}

// watchRoot is a watched filesystem.
type watchRoot struct {
	fd   int    // open directory: mark object and mount_fd
	path string // as given to WatchFilesystem
	dev  uint64 // st_dev of path
}

// OpenWatcher creates a fanotify notification group reporting directory
// handles, names and, where the kernel can, the child's handle
// (fanotify_init(2) with FAN_REPORT_DFID_NAME_TARGET, else
// FAN_REPORT_DFID_NAME). A kernel without FID reporting (before 5.9) gives
// an error matching ErrNotSupported; without privilege, os.ErrPermission.
func OpenWatcher(opts WatchOptions) (*Watcher, error) {
	size := opts.BufferSize
	if size == 0 {
		size = defaultWatchBuffer
	}
	if size < minWatchBuffer {
		return nil, fmt.Errorf("fanotify: watcher buffer of %d bytes, need at least %d", size, minWatchBuffer)
	}
	base := uint(watchInitFlags)
	if opts.UnlimitedQueue {
		base |= unix.FAN_UNLIMITED_QUEUE
	}
	// The FID reporting modes, best first:
	//   - FAN_REPORT_DFID_NAME_TARGET (Linux 5.17) = FAN_REPORT_DIR_FID |
	//     FAN_REPORT_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID: every
	//     directory-entry event carries the directory's handle, the name
	//     and the child's handle (checked on 6.18).
	//   - FAN_REPORT_DFID_NAME (Linux 5.9): directory handle and name.
	report := []uint{unix.FAN_REPORT_DFID_NAME_TARGET, unix.FAN_REPORT_DFID_NAME}
	if opts.noTargetFID {
		report = report[1:]
	}
	var (
		fd    int
		err   error
		flags uint
	)
	for _, r := range report {
		flags = base | r
		fd, err = unix.FanotifyInit(flags, watchEventFlags)
		if err != unix.EINVAL {
			break
		}
	}
	if err != nil {
		errno, _ := err.(syscall.Errno)
		return nil, &Error{Op: "fanotify_init", Errno: errno, unsupported: errno == unix.EINVAL}
	}
	w := &Watcher{
		f: os.NewFile(uintptr(fd), "fanotify-watch"),
		features: WatchFeatures{
			InitFlags: flags,
			ChildFID:  flags&unix.FAN_REPORT_TARGET_FID != 0,
		},
		roots: make(map[[2]int32]watchRoot),
		buf:   make([]byte, size),
		hbuf:  make([]byte, fileHandleLen+maxHandleSize),
		pbuf:  make([]byte, unix.PathMax),
		last:  lastDir{fd: -1},
	}
	if w.rc, err = w.f.SyscallConn(); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("fanotify: open watcher: %w", err)
	}
	return w, nil
}

// Features reports the kernel features this Watcher uses.
func (w *Watcher) Features() WatchFeatures { return w.features }

// WatchFilesystem reports name changes anywhere on the filesystem that holds
// the directory path, through every mount of it (FAN_MARK_FILESYSTEM with
// Create, Delete, MovedFrom, MovedTo and OnDir).
//
// NameEvent.Dir paths are resolved through the mount path is on: pass the
// mount point of a mount that shows the whole filesystem (in mountinfo, a
// mount whose root is "/"). Through a bind mount of a subdirectory, events
// in directories outside it carry ErrUnreachable instead of a Dir. Watching
// a second path of an already watched filesystem does nothing.
//
// It opens path (a directory open, O_RDONLY): do not call it from a
// Listener's handler when that Listener marks path's filesystem for
// open permission events on directories, or the handler waits on itself. The filesystem must report an fsid and support file handles
// (tmpfs, ext4, xfs, btrfs do); the kernel refuses others (ENODEV,
// EOPNOTSUPP, EXDEV).
func (w *Watcher) WatchFilesystem(path string) error {
	if path == "" {
		return &Error{Op: "watch", Errno: unix.ENOENT}
	}
	// A real open, not O_PATH: fanotify_mark and open_by_handle_at both
	// refuse O_PATH descriptors (EBADF).
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		return err
	})
	if err != nil {
		return watchErr("open", path, err)
	}
	keep := false
	defer func() {
		if !keep {
			unix.Close(fd)
		}
	}()
	var (
		sfs unix.Statfs_t
		st  unix.Stat_t
	)
	if err := ignoringEINTR(func() error { return unix.Fstatfs(fd, &sfs) }); err != nil {
		return watchErr("fstatfs", path, err)
	}
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return watchErr("fstat", path, err)
	}
	fsid := sfs.Fsid.Val

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed.Load() {
		return ErrClosed
	}
	if r, ok := w.roots[fsid]; ok {
		if r.dev == uint64(st.Dev) {
			return nil
		}
		return fmt.Errorf("fanotify: watch %s: filesystem id %x:%x is already used by %s, a different filesystem: events could not be told apart",
			path, uint32(fsid[0]), uint32(fsid[1]), r.path)
	}
	err = w.control(func(gfd int) error {
		return unix.FanotifyMark(gfd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, watchMask, fd, "")
	})
	if err != nil {
		return withPath(err, path)
	}
	w.roots[fsid] = watchRoot{fd: fd, path: path, dev: uint64(st.Dev)}
	keep = true
	return nil
}

// Unwatch stops reporting the filesystem that holds path and releases the
// descriptor WatchFilesystem kept. Any path on the filesystem will do. An
// unwatched filesystem gives an error matching unix.ENOENT.
func (w *Watcher) Unwatch(path string) error {
	if path == "" {
		return &Error{Op: "unwatch", Errno: unix.ENOENT}
	}
	var sfs unix.Statfs_t
	if err := ignoringEINTR(func() error { return unix.Statfs(path, &sfs) }); err != nil {
		return watchErr("statfs", path, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed.Load() {
		return ErrClosed
	}
	r, ok := w.roots[sfs.Fsid.Val]
	if !ok {
		return &Error{Op: "unwatch", Path: path, Errno: unix.ENOENT}
	}
	delete(w.roots, sfs.Fsid.Val)
	err := w.control(func(gfd int) error {
		return unix.FanotifyMark(gfd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_FILESYSTEM, watchMask, r.fd, "")
	})
	unix.Close(r.fd)
	return withPath(err, path)
}

// Close closes the group, wakes a blocked Read with ErrClosed and releases
// the watched filesystems. It is idempotent.
func (w *Watcher) Close() error {
	w.closed.Store(true)
	err := w.f.Close()
	w.mu.Lock()
	for _, r := range w.roots {
		unix.Close(r.fd)
	}
	clear(w.roots)
	w.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("fanotify: close watcher: %w", err)
	}
	return nil
}

// control runs fn with the group descriptor, guarding it against a
// concurrent Close, and turns an errno into *Error.
func (w *Watcher) control(fn func(fd int) error) error {
	var err error
	cerr := w.rc.Control(func(fd uintptr) {
		err = ignoringEINTR(func() error { return fn(int(fd)) })
	})
	if cerr != nil {
		return w.closedErr(cerr)
	}
	if errno, ok := err.(syscall.Errno); ok {
		return &Error{Op: "fanotify_mark", Errno: errno}
	}
	return err
}

func (w *Watcher) closedErr(err error) error {
	if w.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("fanotify: %w", err)
}

// Read waits until events are queued, reads as many as fit in the buffer
// with one read(2), resolves each (directory path, child identity) and
// appends them to dst[:0]. Reuse dst across calls.
//
// Read returns ctx.Err() when ctx is done and ErrClosed after Close; both
// wake a blocked call. An error wrapping ErrMalformedEvent comes with the
// events decoded before the fault. Problems with one event are reported in
// its Err, not as Read's error.
func (w *Watcher) Read(ctx context.Context, dst []NameEvent) ([]NameEvent, error) {
	dst = dst[:0]
	w.readMu.Lock()
	defer w.readMu.Unlock()
	n, err := w.wait(ctx)
	if err != nil {
		return dst, err
	}
	raw, derr := DecodeFID(w.buf[:n], w.raw[:0])
	w.raw = raw[:0]
	w.mu.RLock()
	for i := range raw {
		dst = append(dst, w.resolve(&raw[i]))
	}
	w.forgetDir()
	w.mu.RUnlock()
	clear(raw) // drop references into buf
	return dst, derr
}

// wait reads once from the group descriptor, parking on the runtime poller
// until it is readable, ctx is done or the Watcher is closed. It is
// Listener.ReadEvents' waiting design.
func (w *Watcher) wait(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := w.f.SetReadDeadline(time.Time{}); err != nil {
		return 0, w.closedErr(err)
	}
	var (
		stop  func() bool
		fired chan struct{}
	)
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			w.f.SetReadDeadline(aLongTimeAgo)
			close(fired)
		})
	}
	var (
		n     int
		errno error
	)
	err := w.rc.Read(func(fd uintptr) bool {
		errno = ignoringEINTR(func() error {
			var err error
			n, err = unix.Read(int(fd), w.buf)
			return err
		})
		return errno != unix.EAGAIN
	})
	if stop != nil && !stop() {
		<-fired
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, w.closedErr(err)
	}
	if errno != nil {
		e, _ := errno.(syscall.Errno)
		return 0, &Error{Op: "read", Errno: e}
	}
	return n, nil
}

// resolve turns a decoded record into a NameEvent: the directory's path
// through its handle, the child's identity through its handle or its name.
// The child is resolved even when the directory is not. It closes any
// descriptor the record carried. Called with readMu and mu (read) held.
func (w *Watcher) resolve(e *FIDEvent) NameEvent {
	if e.Fd >= 0 {
		closeFd(e.Fd)
	}
	if e.PidFd >= 0 {
		closeFd(e.PidFd)
	}
	ne := NameEvent{Mask: e.Mask, Pid: e.Pid, Name: string(e.Name), Err: e.Err}
	if e.Mask&QueueOverflow != 0 {
		return ne
	}
	setErr := func(err error) {
		if ne.Err == nil {
			ne.Err = err
		}
	}
	fsid := e.Dir.Fsid
	switch {
	case e.Dir.Valid():
	case e.Child.Valid():
		fsid = e.Child.Fsid
		setErr(fmt.Errorf("%w: no directory record in event %#x", ErrMalformedEvent, e.Mask))
	default:
		setErr(fmt.Errorf("%w: no file identifier in event %#x", ErrMalformedEvent, e.Mask))
		return ne
	}
	root, ok := w.roots[fsid]
	if !ok {
		setErr(fmt.Errorf("fanotify: event %#x for %q on filesystem %x:%x, which is not watched",
			e.Mask, ne.Name, uint32(fsid[0]), uint32(fsid[1])))
		return ne
	}
	dirfd := -1
	if e.Dir.Valid() {
		var err error
		dirfd, ne.Dir, err = w.dir(root.fd, &e.Dir)
		if err != nil {
			setErr(fmt.Errorf("%w (directory of %q)", err, ne.Name))
		}
	}

	var st unix.Stat_t
	switch {
	case e.Child.Valid():
		cfd, err := w.openByHandle(root.fd, &e.Child, unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			// ESTALE: the child's last link is gone (or the
			// inode was evicted): unknown, not an error.
			if !errors.Is(err, unix.ESTALE) && !errors.Is(err, unix.ENOENT) {
				setErr(watchErr("open_by_handle_at", "child "+ne.Name, err))
			}
			return ne
		}
		err = ignoringEINTR(func() error { return unix.Fstat(cfd, &st) })
		unix.Close(cfd)
		if err != nil {
			setErr(watchErr("fstat", "child "+ne.Name, err))
			return ne
		}
	case dirfd >= 0 && e.Mask&(Create|MovedTo) != 0 && ne.Name != "":
		// Without the child's handle (before Linux 5.17): whatever
		// holds the name now.
		err := ignoringEINTR(func() error {
			return unix.Fstatat(dirfd, ne.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
		})
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				setErr(watchErr("fstatat", "child "+ne.Name, err))
			}
			return ne
		}
	default:
		return ne
	}
	ne.Dev, ne.Ino, ne.Nlink = uint64(st.Dev), uint64(st.Ino), uint64(st.Nlink)
	if e.Child.Valid() {
		ne.Child = Handle{Fsid: e.Child.Fsid, Type: e.Child.HandleType, Bytes: string(e.Child.Handle)}
	}
	return ne
}

// WatchesDevice reports whether the filesystem with device number dev
// (st_dev) is watched: whether its name changes are reported.
func (w *Watcher) WatchesDevice(dev uint64) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, r := range w.roots {
		if r.dev == dev {
			return true
		}
	}
	return false
}

// StatHandle finds the file h identifies (open_by_handle_at(2) with O_PATH,
// relative to the watched filesystem of h.Fsid, then fstat) and returns its
// identity. Once the file is gone (its last name removed; on tmpfs, also
// its last descriptor closed) the error matches unix.ESTALE; a filesystem
// that is not watched gives one matching unix.ENOENT. Nothing is opened for
// reading, so no permission event is raised.
func (w *Watcher) StatHandle(h Handle) (FileStat, error) {
	if !h.Valid() || len(h.Bytes) > maxHandleSize {
		return FileStat{}, &Error{Op: "open_by_handle_at", Errno: unix.EINVAL}
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed.Load() {
		return FileStat{}, ErrClosed
	}
	root, ok := w.roots[h.Fsid]
	if !ok {
		return FileStat{}, &Error{Op: "open_by_handle_at", Errno: unix.ENOENT}
	}
	buf := make([]byte, fileHandleLen+len(h.Bytes))
	binary.NativeEndian.PutUint32(buf[0:], uint32(len(h.Bytes)))
	binary.NativeEndian.PutUint32(buf[4:], uint32(h.Type))
	copy(buf[fileHandleLen:], h.Bytes)
	var fd uintptr
	for {
		var errno syscall.Errno
		fd, _, errno = unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(root.fd), uintptr(unsafe.Pointer(&buf[0])), unix.O_PATH|unix.O_CLOEXEC)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return FileStat{}, &Error{Op: "open_by_handle_at", Errno: errno}
		}
		break
	}
	defer unix.Close(int(fd))
	return Stat(int32(fd))
}

// dir resolves a directory handle, or reuses the previous event's
// resolution when the handle is the same. The descriptor (or -1) belongs to
// w.last: the caller must not close it.
func (w *Watcher) dir(mountFd int, dir *FID) (int, string, error) {
	l := &w.last
	if l.ok && l.fsid == dir.Fsid && l.htype == dir.HandleType && bytes.Equal(l.handle, dir.Handle) {
		return l.fd, l.path, l.err
	}
	w.forgetDir()
	l.fd, l.path, l.err = w.resolveDir(mountFd, dir)
	l.ok, l.fsid, l.htype = true, dir.Fsid, dir.HandleType
	l.handle = append(l.handle[:0], dir.Handle...)
	return l.fd, l.path, l.err
}

// forgetDir closes the remembered directory.
func (w *Watcher) forgetDir() {
	l := &w.last
	if l.ok && l.fd >= 0 {
		unix.Close(l.fd)
	}
	l.ok, l.fd, l.path, l.err = false, -1, "", nil
}

// resolveDir opens a directory by its handle (O_PATH) and finds its path.
// It returns the descriptor whenever the open worked, also when the path
// is not usable (err set).
func (w *Watcher) resolveDir(mountFd int, dir *FID) (int, string, error) {
	fd, err := w.openByHandle(mountFd, dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		// ESTALE: the directory was removed before the event was read.
		return -1, "", watchErr("open_by_handle_at", "", err)
	}
	p, err := PathOf(int32(fd), w.pbuf)
	if err != nil {
		return fd, "", err
	}
	if gone, ok := strings.CutSuffix(string(p), " (deleted)"); ok {
		// Opened by handle while it was being removed: the path
		// is no longer a directory of the filesystem.
		return fd, "", &Error{Op: "resolve directory", Path: gone, Errno: unix.ESTALE}
	}
	// d_path of a directory outside the subtree the watched mount
	// shows (a bind mount of a subdirectory) is not a path to it: the
	// kernel answers "/" or a path relative to the filesystem's root.
	// Take the path only if it leads back to the same directory.
	var dst, pst unix.Stat_t
	err = ignoringEINTR(func() error { return unix.Fstat(fd, &dst) })
	if err == nil {
		err = ignoringEINTR(func() error { return unix.Lstat(string(p), &pst) })
	}
	if err != nil || dst.Dev != pst.Dev || dst.Ino != pst.Ino {
		return fd, "", fmt.Errorf("%w: resolved to %q", ErrUnreachable, p)
	}
	return fd, string(p), nil
}

// openByHandle calls open_by_handle_at(2) on fid's handle relative to the
// filesystem of mountFd, without allocating.
func (w *Watcher) openByHandle(mountFd int, fid *FID, flags int) (int, error) {
	if len(fid.Handle) > maxHandleSize {
		return -1, unix.EINVAL
	}
	h := w.hbuf[:fileHandleLen+len(fid.Handle)]
	binary.NativeEndian.PutUint32(h[0:], uint32(len(fid.Handle)))
	binary.NativeEndian.PutUint32(h[4:], uint32(fid.HandleType))
	copy(h[fileHandleLen:], fid.Handle)
	for {
		fd, _, errno := unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(mountFd), uintptr(unsafe.Pointer(&h[0])), uintptr(flags))
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, errno
	}
}

// watchErr wraps an errno from step op about path as *Error.
func watchErr(op, path string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return &Error{Op: op, Path: path, Errno: errno}
	}
	return fmt.Errorf("fanotify: %s %s: %w", op, path, err)
}

// withPath sets the Path of an *Error in err.
func withPath(err error, path string) error {
	var fe *Error
	if errors.As(err, &fe) && fe.Path == "" {
		fe.Path = path
	}
	return err
}
