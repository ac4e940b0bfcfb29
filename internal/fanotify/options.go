package fanotify

import "time"

// Options select fanotify_init(2) flags beyond the fixed ones. The zero value
// is a sensible default: bounded queue, pidfds when the kernel has them.
type Options struct {
	// UnlimitedQueue lifts the queue limit of
	// /proc/sys/fs/fanotify/max_queued_events (FAN_UNLIMITED_QUEUE; needs
	// CAP_SYS_ADMIN, which permission events need anyway). Without it a
	// permission event that does not fit is allowed by the kernel (fail
	// open) and a QueueOverflow event is queued: whoever can run
	// max_queued_events+1 openers at once (16,385 by default) gets one
	// open past the listener. With it no permission event is ever dropped;
	// each waiting opener is one queued event (112 bytes of slab on Linux
	// 6.18, charged to the listener's memory cgroup), and the number of
	// openers that can wait at once is the number of tasks the kernel lets
	// exist (pid_max, threads-max, RLIMIT_NPROC, the cgroup's pids.max),
	// each of which costs its owner far more (a kernel stack alone is 16
	// KiB). The limit is read once, when the group is created.
	UnlimitedQueue bool
	// UnlimitedMarks lifts the per-group mark limit (FAN_UNLIMITED_MARKS),
	// useful when many ignore marks are cached.
	UnlimitedMarks bool
	// EnableAudit lets verdicts carry Audit (FAN_ENABLE_AUDIT).
	EnableAudit bool
	// NoPidFd does not ask for FAN_REPORT_PIDFD. Without NoPidFd, Open asks
	// for it and falls back without it when the kernel (before 5.15)
	// rejects the flag.
	NoPidFd bool
	// Spin makes ReadEvents keep trying a non-blocking read for up to this
	// long before it parks. A listener that parks is woken by the kernel
	// for every event; on a busy file system the next event usually comes
	// within microseconds of the last answer, and catching it while still
	// running avoids that wake-up. Spin is the maximum: a spin that finds
	// nothing halves the next one (down to none), and an event that comes
	// soon after a call begins raises it to about twice that gap. The CPU
	// it costs is bounded by Spin per call, so an idle listener spends
	// none. Zero never spins.
	Spin time.Duration
}

// Features reports what Open and the kernel settled on.
type Features struct {
	// PidFd is true when events carry a pidfd (FAN_REPORT_PIDFD).
	PidFd bool
	// UnlimitedQueue is true when the group has no queue limit
	// (FAN_UNLIMITED_QUEUE): it never reports QueueOverflow and never
	// lets a permission event through because it did not fit.
	UnlimitedQueue bool
	// Audit is true when verdicts may carry Audit.
	Audit bool
	// IgnoreFlags are the fanotify_mark(2) flags used for ignore marks:
	// FAN_MARK_IGNORE|FAN_MARK_IGNORED_SURV_MODIFY|FAN_MARK_EVICTABLE on
	// Linux 6.0 and later, FAN_MARK_IGNORED_MASK based flags before.
	IgnoreFlags uint
}

// Timespec is a time as the kernel stores it.
type Timespec struct {
	Sec  int64
	Nsec int64
}

// FileStat is the identity of an open file, from fstat(2).
type FileStat struct {
	// Dev is the device of the filesystem holding the file (st_dev).
	Dev uint64
	// Ino is the inode number (st_ino).
	Ino uint64
	// Nlink is the number of hard links (st_nlink).
	Nlink uint64
	// Mode is the file type and permission bits (st_mode).
	Mode uint32
	// Uid and Gid own the file.
	Uid, Gid uint32
	// Size is the size in bytes.
	Size int64
	// Ctime is the last status change (st_ctim); with Dev and Ino it
	// identifies a version of an executable.
	Ctime Timespec
}
