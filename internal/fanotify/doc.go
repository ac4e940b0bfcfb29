// Package fanotify is drmfilter's thin binding to Linux fanotify permission
// events. It owns the lifetime and correctness of every descriptor fanotify
// hands out: the group descriptor (Open, Close), and the one or two
// descriptors each event carries (Event.Close), which must be answered and
// closed on every path. It holds no policy: what to allow is the caller's
// business.
//
// References: fanotify(7), fanotify_init(2), fanotify_mark(2), and
// include/uapi/linux/fanotify.h for the record layouts.
//
// # Shape
//
//	l, err := fanotify.Open(fanotify.Options{})      // FAN_CLASS_CONTENT group
//	defer l.Close()                                  // allows everything pending
//	err = l.MarkFilesystem("/srv/data", fanotify.OpenPerm|fanotify.OpenExecPerm)
//	err = l.Handle(ctx, func(e *fanotify.Event) fanotify.Verdict {
//		return fanotify.Allow                        // answered and closed by Handle
//	}, fanotify.HandleOptions{FailVerdict: fanotify.Allow})
//
// Handle reads many events per read(2), answers the listener's own
// process at once (deciding them could deadlock it on itself), calls the
// handler for the rest, answers with RespondAll and closes every
// descriptor, also when the handler panics. Callers that need their own
// worker pool use ReadEvents, RespondAll and Event.Close directly.
//
// # Waiting and stopping
//
// The group descriptor is opened with FAN_NONBLOCK and handed to the Go
// runtime poller (epoll, woken through an eventfd), rather than to a
// private poll(2) loop with its own wake pipe: a waiting ReadEvents parks a
// goroutine instead of a thread, Close wakes it with ErrClosed, a done
// context wakes it through a past read deadline, and the poller's
// reference counting guarantees the descriptor number is not closed (and
// reused) while a read, write or mark on it is still in flight. Raw
// system calls are made through syscall.RawConn so that EAGAIN, EINTR and
// short writes are handled here, not by os.File.
//
// # Kernel behaviour this package relies on (checked on Linux 6.18)
//
//   - FAN_REPORT_PIDFD (5.15) is requested by default; Open falls back
//     without it when fanotify_init rejects it with EINVAL.
//   - A write(2) of several struct fanotify_response is consumed one
//     response at a time: the kernel answers the first and returns 8.
//     RespondAll writes one buffer and resumes after each short write.
//   - Ignore marks use FAN_MARK_IGNORE|FAN_MARK_IGNORED_SURV_MODIFY|
//     FAN_MARK_EVICTABLE (6.0), else FAN_MARK_IGNORED_MASK with the same
//     modifiers (5.19), else without FAN_MARK_EVICTABLE. Open probes which
//     one fanotify_mark accepts without marking anything.
//   - Closing the group descriptor allows every pending permission event;
//     a queue overflow allows the events that did not fit.
//
// # Files
//
//   - doc.go: this overview.
//   - abi.go: kernel ABI constants (mask bits, record layout), platform neutral.
//   - errors.go: ErrNotSupported, ErrClosed, ErrMalformedEvent, *Error, *PanicError.
//   - options.go: Options, Features, FileStat.
//   - event.go: Event, Verdict, Response.
//   - decode.go: Decode, the pure decoder of read(2) buffers (fuzzed).
//   - handle.go: Handle, the answer-and-close loop.
//   - listener_linux.go: Open, marks, ReadEvents, RespondAll, Close.
//   - fd_linux.go: PathOf, Stat and closing of event descriptors.
//   - listener_other.go: stubs returning ErrNotSupported elsewhere.
package fanotify
