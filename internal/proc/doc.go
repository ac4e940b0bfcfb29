// Package proc tells who the process behind a fanotify event is: its
// executable (path, identity, and on demand SHA-256), its real uid, gid and
// supplementary groups, its name, and its container. It owns the process
// cache and the executable-hash cache; it holds no policy.
//
// Everything is read through a root directory: "/" in production, "/host"
// when the agent runs in a pod with the host's /proc mounted there, and a
// fixture tree in tests. Sources: proc(5) for /proc/PID/{exe,stat,status},
// pidfd_open(2), and for pidfs include/uapi/linux/pidfd.h (PIDFD_GET_INFO,
// Linux 6.13) and fs/pidfs.c (one inode per process, Linux 6.9).
//
// # Identity of a process
//
// A PID is reused once its process is reaped, so the cache never keys by
// PID alone:
//
//   - With a pidfd on pidfs (Linux 6.9 and later; fanotify hands one out
//     with FAN_REPORT_PIDFD), the key is the pidfd's inode number, which
//     is unique per process for the life of the system (on 64-bit). Getting
//     it is one fstat(2). The pidfd also proves that /proc/PID was still
//     this process when it was read: the process held the PID from its
//     start until the liveness check that follows the reads.
//   - Otherwise the key is the PID with its start time (field 22 of
//     /proc/PID/stat), read after the other reads (see below).
//
// # What a cache hit costs, and why it is not free
//
// A process keeps its identity across execve(2) and setuid(2): a cached
// answer could name the program a process ran before it exec'd another, or
// the uid it had before it dropped or raised privileges. A policy engine
// that trusted such an answer could be walked around (an allowed program
// that execs /bin/cat). So every hit is revalidated against the kernel:
//
//   - pidfd on pidfs: fstat(pidfd) for the key, one stat(2) of
//     /proc/PID/exe (a path walk into procfs, no file contents read) to see
//     that the executable (device, inode, change time, size) is unchanged,
//     and one PIDFD_GET_INFO ioctl to see that the real uid and gid are
//     unchanged and that the process is alive. Three system calls, no file
//     read, no allocation: about 6 µs on the 2-vCPU development VM, where
//     a bare getpid(2) costs 0.2 µs and the stat of /proc/PID/exe alone
//     about 4 µs (BenchmarkLookup/hit-pidfd). Kernels with pidfs but
//     without PIDFD_GET_INFO (6.9 to 6.12) read /proc/PID/status instead.
//   - without a pidfd: /proc/PID/exe is stat'ed, /proc/PID/status is read
//     (uid, gid, groups), and /proc/PID/stat is read last for the key: if
//     the start time matches a cached entry, that process was alive before
//     it was cached and after the reads, so the reads were of it. Correct,
//     but about 50 µs here, most of it the kernel formatting status;
//     FAN_REPORT_PIDFD exists since Linux 5.15.
//
// A hit that finds a change reloads the process. What is not noticed: a
// change of supplementary groups alone (setgroups(2) without a uid or gid
// change) on the pidfd path, and a move to another cgroup (the container
// is read once per process; a container it names is believed only if
// root named the cgroup, see environ.CgroupOwners, and Container.Rejected
// says why not). A cheaper exec and setuid signal (the proc
// connector's exec/uid events drained before each hit, or a BPF-LSM exec
// counter) would let the pidfd hit drop the stat of /proc/PID/exe.
//
// # A process whose leader has exited
//
// The thread whose id is the PID (the leader) can end while the others
// run on: pthread_exit(3) in main. fanotify still names the process by
// that PID, but the leader is a zombie: /proc/PID/exe is gone (ENOENT),
// /proc/PID/status says State Z, and its Uid:/Gid: lines, like
// PIDFD_GET_INFO, keep the credentials the leader exited with (a later
// setuid(2) changes only the live threads). /proc/PID/stat still gives
// the start time, and the zombie leader holds the PID, so the keys above
// still apply. When /proc/PID/exe is missing, Lookup reads the process
// through the first running thread that /proc/PID/task lists
// (/proc/PID/task/TID/{exe,status,cgroup}, and /proc/TID for the
// container), records it as Process.Thread and revalidates through it;
// a thread that exits is replaced by another. Only when no thread runs
// is the process a zombie (gone), and a leader that runs without an
// executable is a kernel thread. The credentials are those of one thread:
// without FAN_REPORT_TID the event does not say which thread opened, so
// threads that changed their credentials alone (raw setuid(2), not
// glibc's, which changes them all) are told apart no better than with a
// running leader.
//
// # Failures
//
// A failed Lookup returns a *LookupError. It matches ErrGone only when the
// process has exited: its start time changed during the lookup, its pidfd
// says it was reaped, or none of its threads runs. Otherwise it matches
// ErrUnidentified: a thread still runs, and it may be the one blocked in
// the event, so the agent must not let it through as it would a process
// that is gone. A lookup that fails for a running process is tried once
// more first (it may have raced with its leader's exit).
//
// # Executable hashes
//
// SHA256 reads the executable through /proc/PID/exe (a running thread's
// when the leader has exited), which works across mount namespaces and
// for deleted files, and checks that the opened file is the one the
// Process names (device, inode, change time, size) before and after
// reading it. That identity does not always change with the content: a
// store through a shared writable mapping to a page already read changes
// a tmpfs file without moving its times (issue #17, case 11). So the sum
// is cached by that identity only when no one but root (or the user the
// agent runs as) can change the content: the file is theirs, its group
// and others may not write it, and it is on a local file system whose
// changes all go through this kernel (ext2/3/4, xfs, btrfs, f2fs, tmpfs,
// ramfs, squashfs, erofs, overlayfs). Any other executable is read again
// at each call (BenchmarkSHA256Uncached: about 60 µs for 44 KB, 20 ms for
// 16 MiB here). Concurrent requests for one cacheable identity read the
// file once. Files larger than
// Options.MaxHashSize are refused with ErrTooLarge. The agent opening the
// executable raises its own fanotify event when the file is on a marked
// filesystem; the fanotify package answers its own process's events at
// once, so this cannot deadlock.
//
// # Files
//
//	doc.go            this comment
//	process.go        Process, ExeID, Container, Pod, Options, Stats, errors, LookupError, NewResolver
//	parse.go          ParseStatus and ParseStatStart: parsers over bytes and readers
//	lru.go            the bounded LRU used by both caches
//	lookup_linux.go   Lookup: keys, revalidation, loading, reading through a thread, failures
//	sys_linux.go      allocation-free system calls and /proc paths: open, read, fstat, pidfd
//	stat_fast_linux.go  stat(2) of a byte path through newfstatat (amd64, arm64, riscv64)
//	stat_slow_linux.go  the same through unix.Stat elsewhere (allocates)
//	hash.go           SHA256, the hash cache and its single flight, what may be cached
//	hash_linux.go     opening the executable through /proc/PID/exe; contentGuarded
//	hash_other.go     the same off Linux (nothing is read)
//	proc_other.go     stubs returning ErrNotSupported off Linux
package proc
