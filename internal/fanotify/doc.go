// Package fanotify is drmfilter's thin binding to Linux fanotify permission
// events, and to name-change notifications (Watcher). It owns the lifetime
// and correctness of every descriptor fanotify hands out: the group
// descriptor (Open, Close), and the one or two descriptors each event
// carries (Event.Close), which must be answered and closed on every path.
// It holds no policy: what to allow is the caller's business.
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
//     a queue overflow allows the events that did not fit. The queue limit
//     (/proc/sys/fs/fanotify/max_queued_events) is copied into the group
//     when fanotify_init creates it; changing the sysctl later does not
//     change existing groups. Options.UnlimitedQueue (FAN_UNLIMITED_QUEUE)
//     removes the limit, so no permission event is ever let through by
//     overflow: each blocked opener is one queued event of 112 bytes
//     (slab fanotify_perm_event), charged to the listener's memory cgroup.
//
// # Name changes: Watcher
//
// Permission events say nothing about names appearing and disappearing, and
// there are no permission events for link, rename or unlink. A Watcher is a
// second group, of the notification class with FID reporting, that reports
// every directory-entry change on whole filesystems, so that a caller
// indexing files by identity learns that a name was created, hard-linked
// or moved into a directory, or deleted or moved out of one:
//
//	w, err := fanotify.OpenWatcher(fanotify.WatchOptions{})
//	defer w.Close()
//	err = w.WatchFilesystem("/srv")       // FAN_MARK_FILESYSTEM
//	evs, err := w.Read(ctx, evs)          // []NameEvent, batched
//	// evs[i]: Mask (Create, Delete, MovedFrom, MovedTo, OnDir, or
//	// QueueOverflow: rescan), Dir, Name, Dev, Ino and Child (handle) of
//	// the child, Err
//	st, err := w.StatHandle(evs[i].Child) // later: the file, wherever it went
//
// fanotify_init gets FAN_CLASS_NOTIF|FAN_CLOEXEC|FAN_NONBLOCK with
// FAN_REPORT_DFID_NAME_TARGET (5.17; accepted by 6.18), which gives each
// event the directory's file handle, the name, and the child's file handle;
// on older kernels FAN_REPORT_DFID_NAME (5.9), without the child's handle.
// The events carry handles, not descriptors: nothing is owned per event.
// Read resolves the directory with open_by_handle_at(2) (O_PATH) relative
// to a descriptor of the watched mount kept by WatchFilesystem, and names it
// by readlink of /proc/self/fd/N, checked by stat to lead back to the same
// directory (through a bind mount of a subdirectory, the kernel names
// directories outside it "/"); the child by its handle and fstat, or, without
// one, by fstatat of the name. Paths are those at read time, not at event
// time. Read waits, wakes and stops as ReadEvents does.
//
// Facts checked on Linux 6.18 that callers must know:
//
//   - The kernel merges a still-queued event with a later one about the
//     same directory, name and child from the same process, or-ing masks:
//     a create and unlink of "m" arrive as one Create|Delete event. A
//     NameEvent means "look at this name now", not a replayable history.
//     Events about different names keep their order.
//   - link(2) is reported as Create of the new name (with the existing
//     inode as child); FAN_ATTRIB would add only a nameless event, so the
//     Watcher does not ask for it.
//   - Once a child's last link is gone its handle is stale: the child of a
//     final Delete is usually unknown (Ino 0), and StatHandle of a handle
//     kept from an earlier event fails with ESTALE. Handles carry the
//     inode's generation (tmpfs, ext4, xfs, btrfs): a new file that reuses
//     the inode number has another handle. A directory removed before
//     its events are read cannot be named: those events carry Err
//     (unix.ESTALE).
//   - fanotify_mark and open_by_handle_at refuse O_PATH descriptors, so
//     WatchFilesystem keeps a real directory descriptor, which keeps the
//     filesystem busy until Unwatch or Close.
//   - On queue overflow (16384 events by default) a single event with Mask
//     QueueOverflow follows the events that fit.
//
// # Files
//
//   - doc.go: this overview.
//   - abi.go: kernel ABI constants (mask bits, record layouts), platform neutral.
//   - errors.go: ErrNotSupported, ErrClosed, ErrMalformedEvent, *Error, *PanicError.
//   - options.go: Options, Features, FileStat.
//   - event.go: Event, Verdict, Response.
//   - decode.go: Decode, the pure decoder of read(2) buffers (fuzzed).
//   - handle.go: Handle, the answer-and-close loop.
//   - listener_linux.go: Open, marks, ReadEvents, RespondAll, Close.
//   - fd_linux.go: PathOf, Stat and closing of event descriptors.
//   - listener_other.go: stubs returning ErrNotSupported elsewhere.
//   - watch.go: WatchOptions, WatchFeatures, NameEvent, Handle,
//     ErrUnreachable.
//   - watch_decode.go: DecodeFID, FIDEvent, FID: the pure decoder of FID
//     info records (fuzzed).
//   - watch_linux.go: Watcher: OpenWatcher, WatchFilesystem, Unwatch,
//     Read (handle resolution), StatHandle, WatchesDevice, Close.
//   - watch_other.go: Watcher stubs returning ErrNotSupported elsewhere.
package fanotify
