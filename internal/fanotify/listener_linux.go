package fanotify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initFlags are the fanotify_init(2) flags every Listener uses:
//
//   - FAN_CLASS_CONTENT: permission events, delivered after notification
//     listeners and before pre-content (HSM) listeners.
//   - FAN_CLOEXEC: the group descriptor must not leak into children; a
//     child holding it would keep the group alive after the agent died,
//     and with it every pending opener.
//   - FAN_NONBLOCK: the descriptor is handed to the Go runtime poller
//     (epoll), so a waiting read parks a goroutine, not a thread, and Close
//     or a context deadline wakes it.
const initFlags = unix.FAN_CLASS_CONTENT | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK

// eventFlags are the open(2) flags of the descriptors the kernel creates for
// events: read-only, large files, and close-on-exec so a handler that starts
// a program does not leak them.
const eventFlags = unix.O_RDONLY | unix.O_LARGEFILE | unix.O_CLOEXEC

// ignoreFlavours are the ignore-mark flags, newest first. Open keeps the
// first one the kernel accepts.
var ignoreFlavours = [...]uint{
	// Linux 6.0: FAN_MARK_IGNORE has clear semantics for directories and
	// non-inode marks; SURV_MODIFY keeps the mark across writes (the
	// verdict cached is about who may open, not about content); EVICTABLE
	// (5.19) lets the inode be evicted, so a large cache does not pin
	// memory (an evicted inode just asks again).
	unix.FAN_MARK_IGNORE | unix.FAN_MARK_IGNORED_SURV_MODIFY | unix.FAN_MARK_EVICTABLE,
	// Linux 5.19.
	unix.FAN_MARK_IGNORED_MASK | unix.FAN_MARK_IGNORED_SURV_MODIFY | unix.FAN_MARK_EVICTABLE,
	// Older kernels.
	unix.FAN_MARK_IGNORED_MASK | unix.FAN_MARK_IGNORED_SURV_MODIFY,
}

// minReadBuffer is the smallest buffer ReadEvents accepts: one event header
// plus a pidfd record, with room to spare. read(2) fails with EINVAL when
// the next event does not fit.
const minReadBuffer = 256

// aLongTimeAgo is a deadline in the past, used to wake a parked read.
var aLongTimeAgo = time.Unix(1, 0)

// Listener is a fanotify group opened with FAN_CLASS_CONTENT. Its methods
// are safe for concurrent use, except that ReadEvents (and so Handle) must
// be called from one goroutine at a time.
//
// Closing the Listener makes the kernel allow every event still waiting for
// an answer; a Listener that is never closed is closed when it is garbage
// collected.
type Listener struct {
	f    *os.File
	rc   syscall.RawConn
	pid  int32
	spin time.Duration
	// budget is the current spin in nanoseconds, at most spin: ReadEvents
	// halves it when a spin ends with nothing to read and raises it when an
	// event comes soon after the call (see adaptSpin).
	budget   atomic.Int64
	features Features
	// closed is set by Close. The runtime poller reports a closed
	// descriptor with an unexported error; this flag names it ErrClosed.
	closed atomic.Bool
}

// Open creates a fanotify group for permission events (fanotify_init(2)).
// It needs CAP_SYS_ADMIN. A kernel without permission events gives an error
// matching ErrNotSupported; without privilege, one matching
// os.ErrPermission.
func Open(opts Options) (*Listener, error) {
	flags := uint(initFlags)
	if opts.UnlimitedQueue {
		flags |= unix.FAN_UNLIMITED_QUEUE
	}
	if opts.UnlimitedMarks {
		flags |= unix.FAN_UNLIMITED_MARKS
	}
	if opts.EnableAudit {
		flags |= unix.FAN_ENABLE_AUDIT
	}
	pidfd := !opts.NoPidFd
	fd, err := fanotifyInit(flags, pidfd)
	if err == unix.EINVAL && pidfd {
		// Before Linux 5.15 FAN_REPORT_PIDFD is an unknown flag.
		pidfd = false
		fd, err = fanotifyInit(flags, false)
	}
	if err != nil {
		errno, _ := err.(syscall.Errno)
		// EINVAL for the plain flags means no CONFIG_FANOTIFY_ACCESS_PERMISSIONS
		// (FAN_CLASS_CONTENT rejected) or an unknown optional flag.
		return nil, &Error{Op: "fanotify_init", Errno: errno, unsupported: errno == unix.EINVAL}
	}
	l := &Listener{
		f:    os.NewFile(uintptr(fd), "fanotify"),
		pid:  int32(os.Getpid()),
		spin: opts.Spin,
		features: Features{
			PidFd:          pidfd,
			Audit:          opts.EnableAudit,
			UnlimitedQueue: opts.UnlimitedQueue,
		},
	}
	l.budget.Store(int64(opts.Spin))
	if l.rc, err = l.f.SyscallConn(); err != nil {
		l.f.Close()
		return nil, fmt.Errorf("fanotify: open: %w", err)
	}
	l.features.IgnoreFlags = l.probeIgnoreFlags()
	return l, nil
}

func fanotifyInit(flags uint, pidfd bool) (int, error) {
	if pidfd {
		flags |= unix.FAN_REPORT_PIDFD
	}
	return unix.FanotifyInit(flags, eventFlags)
}

// probeIgnoreFlags finds the newest ignore-mark flavour the kernel accepts.
// fanotify_mark(2) rejects unknown flags with EINVAL before it looks at the
// object, so a mark on the invalid dirfd -1 fails with EBADF when the flags
// are known and EINVAL when they are not; nothing is marked either way. Any
// other answer falls back to the oldest flavour, which every kernel with
// fanotify accepts.
func (l *Listener) probeIgnoreFlags() uint {
	for _, fl := range ignoreFlavours {
		err := l.control(func(fd int) error {
			return unix.FanotifyMark(fd, unix.FAN_MARK_ADD|fl, OpenPerm, -1, "")
		})
		if errors.Is(err, unix.EBADF) {
			return fl
		}
		if !errors.Is(err, unix.EINVAL) {
			break
		}
	}
	return ignoreFlavours[len(ignoreFlavours)-1]
}

// Features reports the optional kernel features this Listener uses.
func (l *Listener) Features() Features { return l.features }

// Close closes the group descriptor. The kernel then allows every event
// still waiting for an answer and stops reporting; a ReadEvents blocked in
// another goroutine returns ErrClosed. Event descriptors already read stay
// open until their Events are closed. Close is idempotent.
func (l *Listener) Close() error {
	l.closed.Store(true)
	if err := l.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("fanotify: close: %w", err)
	}
	return nil
}

// control runs fn with the group descriptor, guarding it against a
// concurrent Close, and turns an errno into *Error.
func (l *Listener) control(fn func(fd int) error) error {
	var err error
	cerr := l.rc.Control(func(fd uintptr) {
		err = ignoringEINTR(func() error { return fn(int(fd)) })
	})
	if cerr != nil {
		return l.closedErr(cerr)
	}
	if errno, ok := err.(syscall.Errno); ok {
		return &Error{Op: "fanotify_mark", Errno: errno}
	}
	return err
}

// ignoringEINTR retries fn while it fails with EINTR. The Go runtime
// preempts goroutines with signals (SIGURG), and a system call interrupted
// by a signal may fail with EINTR even though it did nothing; repeating it
// is the correct response.
func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}

func (l *Listener) closedErr(err error) error {
	if l.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("fanotify: %w", err)
}

// Mark adds mask to a mark (fanotify_mark(2) with FAN_MARK_ADD|flags) on the
// object named by path. flags select the mark type (FAN_MARK_INODE,
// FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM) and modifiers (FAN_MARK_DONT_FOLLOW,
// FAN_MARK_ONLYDIR, FAN_MARK_IGNORE, ...) from golang.org/x/sys/unix.
func (l *Listener) Mark(flags uint, mask uint64, path string) error {
	return l.mark(unix.FAN_MARK_ADD|flags, mask, path)
}

// Unmark removes mask from a mark (FAN_MARK_REMOVE|flags).
func (l *Listener) Unmark(flags uint, mask uint64, path string) error {
	return l.mark(unix.FAN_MARK_REMOVE|flags, mask, path)
}

func (l *Listener) mark(flags uint, mask uint64, path string) error {
	if path == "" {
		// An empty path would mark the current directory (AT_FDCWD).
		return &Error{Op: "fanotify_mark", Errno: unix.ENOENT}
	}
	err := l.control(func(fd int) error {
		return unix.FanotifyMark(fd, flags, mask, unix.AT_FDCWD, path)
	})
	var fe *Error
	if errors.As(err, &fe) {
		fe.Path = path
	}
	return err
}

// MarkFilesystem reports mask events for every file of the filesystem that
// holds path, through every mount of it, bind mounts included
// (FAN_MARK_FILESYSTEM).
func (l *Listener) MarkFilesystem(path string, mask uint64) error {
	return l.Mark(unix.FAN_MARK_FILESYSTEM, mask, path)
}

// MarkMount reports mask events for files reached through the mount that
// holds path (FAN_MARK_MOUNT). Access through another mount of the same
// filesystem is not reported.
func (l *Listener) MarkMount(path string, mask uint64) error {
	return l.Mark(unix.FAN_MARK_MOUNT, mask, path)
}

// MarkInode reports mask events for the file or directory path
// (FAN_MARK_INODE); for a directory, add OnDir for the directory itself.
func (l *Listener) MarkInode(path string, mask uint64) error {
	return l.Mark(unix.FAN_MARK_INODE, mask, path)
}

// Ignore adds an ignore mark for mask on the inode path: its events in mask
// are no longer reported, from any mark of this Listener, for any process.
// Use it only to cache a verdict that holds for every subject. The mark
// survives writes to the file and, where the kernel has FAN_MARK_EVICTABLE,
// does not pin the inode in memory. Flush(unix.FAN_MARK_INODE) drops all of
// them.
func (l *Listener) Ignore(path string, mask uint64) error {
	if path == "" {
		return &Error{Op: "fanotify_mark", Errno: unix.ENOENT}
	}
	return l.ignore(unix.FAN_MARK_ADD, mask, unix.AT_FDCWD, path)
}

// IgnoreFd is Ignore for the file open as fd, typically an Event.Fd. It does
// not answer the event.
func (l *Listener) IgnoreFd(fd int32, mask uint64) error {
	if fd < 0 {
		return &Error{Op: "fanotify_mark", Errno: unix.EBADF}
	}
	return l.ignore(unix.FAN_MARK_ADD, mask, int(fd), "")
}

// Unignore removes mask from the ignore mark on path.
func (l *Listener) Unignore(path string, mask uint64) error {
	if path == "" {
		return &Error{Op: "fanotify_mark", Errno: unix.ENOENT}
	}
	return l.ignore(unix.FAN_MARK_REMOVE, mask, unix.AT_FDCWD, path)
}

func (l *Listener) ignore(cmd uint, mask uint64, dirfd int, path string) error {
	flags := l.features.IgnoreFlags
	if cmd == unix.FAN_MARK_REMOVE {
		flags &^= unix.FAN_MARK_EVICTABLE
	}
	mark := func(flags uint) error {
		return l.control(func(fd int) error {
			return unix.FanotifyMark(fd, cmd|flags, mask, dirfd, path)
		})
	}
	err := mark(flags)
	var fe *Error
	if errors.As(err, &fe) && fe.Errno == unix.EEXIST && flags&unix.FAN_MARK_EVICTABLE != 0 {
		// The inode already has a non-evictable mark of this group (an
		// inode mark set with MarkInode); the kernel refuses to make it
		// evictable, so add the ignore mask to it as it is.
		err = mark(flags &^ unix.FAN_MARK_EVICTABLE)
	}
	if errors.As(err, &fe) {
		fe.Path = path
	}
	return err
}

// Flush removes every mark of one type (FAN_MARK_FLUSH): flags is
// unix.FAN_MARK_INODE (inode and ignore marks), unix.FAN_MARK_MOUNT or
// unix.FAN_MARK_FILESYSTEM.
func (l *Listener) Flush(flags uint) error {
	return l.control(func(fd int) error {
		return unix.FanotifyMark(fd, unix.FAN_MARK_FLUSH|flags, 0, unix.AT_FDCWD, "")
	})
}

// ReadEvents waits until events are queued, reads as many as fit in buf with
// one read(2), and decodes them into dst[:0] (see Decode). buf should be at
// least 4 KiB; a few hundred bytes is the minimum. Reuse buf and dst across
// calls.
//
// Every returned Event must be answered and closed, also when the error is
// not nil. ReadEvents returns ctx.Err() when ctx is done and ErrClosed after
// Close; both wake a blocked call.
func (l *Listener) ReadEvents(ctx context.Context, buf []byte, dst []Event) ([]Event, error) {
	dst = dst[:0]
	if len(buf) < minReadBuffer {
		return dst, fmt.Errorf("fanotify: read buffer of %d bytes, need at least %d", len(buf), minReadBuffer)
	}
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	var (
		stop  func() bool
		fired chan struct{}
	)
	// Clear the deadline a previous call may have set to wake itself.
	if err := l.f.SetReadDeadline(time.Time{}); err != nil {
		return dst, l.closedErr(err)
	}
	if ctx.Done() != nil {
		// A past read deadline wakes the parked read when ctx is done.
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			l.f.SetReadDeadline(aLongTimeAgo)
			close(fired)
		})
	}
	var (
		n         int
		errno     error
		start     time.Time
		spinUntil time.Time
		budget    time.Duration
		spun      bool // a spin ran out: the budget was already lowered
	)
	if l.spin > 0 {
		budget = time.Duration(l.budget.Load())
		start = time.Now()
		spinUntil = start.Add(budget)
	}
	err := l.rc.Read(func(fd uintptr) bool {
		for {
			errno = ignoringEINTR(func() error {
				var err error
				n, err = unix.Read(int(fd), buf)
				return err
			})
			// EAGAIN: nothing queued. Try again while the spin budget
			// lasts, then park on the poller until readable.
			if errno != unix.EAGAIN {
				if l.spin > 0 {
					l.adaptSpin(budget, time.Since(start), spun)
				}
				return true
			}
			if budget == 0 || !time.Now().Before(spinUntil) { // budget is 0 without spin
				if budget > 0 && !spun {
					l.adaptSpin(budget, -1, false)
				}
				spun = true
				return false
			}
		}
	})
	if stop != nil && !stop() {
		// The deadline was or is being set; wait so that it cannot
		// land after the next call has cleared it.
		<-fired
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return dst, ctx.Err()
		}
		return dst, l.closedErr(err)
	}
	if errno != nil {
		e, _ := errno.(syscall.Errno)
		return dst, &Error{Op: "read", Errno: e}
	}
	return Decode(buf[:n], dst)
}

// minSpin is the smallest spin worth its cost; below it the listener parks
// at once.
const minSpin = 2 * time.Microsecond

// adaptSpin sets the next call's spin budget. gap is how long after the
// call began an event was there to read, or negative when the spin ran out
// with nothing. A spin that finds nothing costs CPU (and, with two CPUs,
// the workload's CPU) for no wake-up saved, so the budget halves, down to
// no spinning at all; an event that comes within the maximum spin after
// the call begins would have been caught by a spin of about twice that
// gap, so the budget rises to that. Workloads whose events follow each
// other closely (a process opening files one after the other) keep
// spinning; those whose events are far apart (one exec every millisecond)
// soon park at once, and an idle listener never spins.
func (l *Listener) adaptSpin(budget, gap time.Duration, parked bool) {
	switch {
	case gap < 0:
		if budget /= 2; budget < minSpin {
			budget = 0
		}
	case gap <= l.spin:
		want := min(max(2*gap, minSpin), l.spin)
		if want <= budget && !parked {
			return
		}
		budget = max(budget, want)
	default:
		return
	}
	l.budget.Store(int64(budget))
}

// Respond answers one permission event: allow or deny (FAN_ALLOW,
// FAN_DENY). fd is the Event.Fd. A denied open fails with EPERM.
func (l *Listener) Respond(fd int32, allow bool) error {
	v := Deny
	if allow {
		v = Allow
	}
	return l.RespondAll([]Response{{Fd: fd, Verdict: v}})
}

// maxBatch is the number of responses encoded on the stack per write.
const maxBatch = 64

// RespondAll answers many permission events, handing the kernel the whole
// batch in one write(2) buffer. The kernel (checked on Linux 6.18)
// processes only the first struct fanotify_response of a write and returns
// its size, so RespondAll writes the rest of the buffer again from there:
// one system call per response today, and fewer on a kernel that would
// consume more per write. A response the kernel rejects (ENOENT: no such
// pending event) does not stop the others; the first error is returned.
// An invalid Verdict is not sent and gives an error.
func (l *Listener) RespondAll(rs []Response) error {
	var (
		buf   [maxBatch * responseLen]byte
		first error
	)
	for len(rs) > 0 {
		k := min(len(rs), maxBatch)
		b := buf[:0]
		for _, r := range rs[:k] {
			if !r.Verdict.valid() {
				if first == nil {
					first = fmt.Errorf("fanotify: respond to fd %d: invalid verdict %d", r.Fd, r.Verdict)
				}
				continue
			}
			b = appendResponse(b, r, l.features.Audit)
		}
		if err := l.writeResponses(b); err != nil {
			if err == ErrClosed {
				return err
			}
			if first == nil {
				first = err
			}
		}
		rs = rs[k:]
	}
	return first
}

func appendResponse(b []byte, r Response, audit bool) []byte {
	resp := uint32(respAllow)
	if r.Verdict&^Audit == Deny {
		resp = respDeny
	}
	if audit && r.Verdict&Audit != 0 {
		resp |= respAudit
	}
	b = binary.NativeEndian.AppendUint32(b, uint32(r.Fd))
	return binary.NativeEndian.AppendUint32(b, resp)
}

// writeResponses writes b, a sequence of struct fanotify_response, going on
// after short writes and past rejected responses.
func (l *Listener) writeResponses(b []byte) error {
	var first error
	err := l.rc.Write(func(fd uintptr) bool {
		for len(b) >= responseLen {
			var n int
			err := ignoringEINTR(func() error {
				var err error
				n, err = unix.Write(int(fd), b)
				return err
			})
			if err != nil {
				if first == nil {
					errno, _ := err.(syscall.Errno)
					first = &Error{Op: "write response", Path: "fd " + strconv.Itoa(int(int32(binary.NativeEndian.Uint32(b)))), Errno: errno}
				}
				n = responseLen // skip the rejected response
			}
			if n <= 0 || n > len(b) {
				n = responseLen
			}
			// The kernel consumes whole responses; never split one.
			n = (n + responseLen - 1) / responseLen * responseLen
			b = b[min(n, len(b)):]
		}
		// The fanotify descriptor never returns EAGAIN on write.
		return true
	})
	if err != nil {
		return l.closedErr(err)
	}
	return first
}
