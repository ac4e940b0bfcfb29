package proc

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/drmfilter/drmfilter/internal/environ"
)

// Sentinel errors. Errors returned by the package wrap one of these when
// it applies, with the PID and the step that failed.
var (
	// ErrGone says the process exited (or its PID now names another
	// process) before it could be looked up: no thread of it is left to
	// wait for an answer.
	ErrGone = errors.New("process gone")
	// ErrUnidentified says a lookup failed although the process is still
	// running: it may be the one waiting for the event's answer, so a
	// caller must not let it through as it would a process that is gone.
	ErrUnidentified = errors.New("process running but not identified")
	// ErrTooLarge says the executable is larger than Options.MaxHashSize.
	ErrTooLarge = errors.New("executable too large to hash")
	// ErrChanged says the executable was replaced or modified while it
	// was being read, or differs from the one the Process names.
	ErrChanged = errors.New("executable changed")
	// ErrNoExe says the process has no executable (a kernel thread).
	ErrNoExe = errors.New("process has no executable")
	// ErrNotSupported is returned off Linux.
	ErrNotSupported = errors.New("not supported on this platform")
)

// LookupError is the error of a failed Lookup. It matches ErrGone when the
// process has exited and ErrUnidentified when it is still running, so
// callers can tell a process nobody waits for from a live one that could
// not be read.
type LookupError struct {
	// PID is the process looked up.
	PID int32
	// Step is what failed: "identify" (the pidfd), "check" (revalidating
	// a cached entry) or "read" (reading /proc).
	Step string
	// Gone is true when the process has exited: its start time changed,
	// its pidfd says it was reaped, or none of its threads is running.
	Gone bool
	// Err is the cause.
	Err error
}

func (e *LookupError) Error() string {
	state := ErrUnidentified
	if e.Gone {
		state = ErrGone
	}
	return fmt.Sprintf("proc: pid %d: %s: %v: %v", e.PID, e.Step, state, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// Is matches ErrGone or ErrUnidentified, whichever e.Gone says. The cause
// never wraps either.
func (e *LookupError) Is(target error) bool {
	switch target {
	case ErrGone:
		return e.Gone
	case ErrUnidentified:
		return !e.Gone
	}
	return false
}

// ExeID identifies one version of an executable file: the same path with a
// new inode, or the same inode after a write, is a different ExeID.
type ExeID struct {
	// Dev is the device of the filesystem holding the file (st_dev).
	Dev uint64
	// Ino is the inode number (st_ino).
	Ino uint64
	// CtimeNs is the last status change (st_ctim) in nanoseconds since
	// the epoch; every write or chmod moves it.
	CtimeNs int64
	// Size is the size in bytes.
	Size int64
}

// Container is the container a process runs in, from the environ package.
// All fields are empty for a host process.
type Container struct {
	// ID is the container ID (64 hex digits for OCI engines, a name for
	// LXC and systemd-nspawn).
	ID string
	// Runtime is the engine: docker, podman, containerd, cri-o, lxc,
	// lxc-libvirt, systemd-nspawn, ...; empty when only the fact of a
	// container is known.
	Runtime string
	// Kubernetes is true when the cgroup says the process is in a pod.
	Kubernetes bool
	// PodUID is the pod's UID from the cgroup path, when in a pod.
	PodUID string
	// Rejected says why the container a cgroup path names was not
	// believed (environ.CgroupOwners: the cgroup could have been named by
	// a user other than root); the other fields are then empty, as for a
	// host process. Empty otherwise.
	Rejected string
}

// Pod is the Kubernetes pod of a process. Nothing fills it in yet: pod
// facts need the API server (a later issue).
type Pod struct {
	// Namespace and Name identify the pod.
	Namespace, Name string
	// UID is the pod's UID.
	UID string
	// Labels are the pod's labels.
	Labels map[string]string
}

// Process is what drmfilter knows about the process behind an event. A
// Process returned by Lookup is shared with the cache: do not modify it.
type Process struct {
	// PID is the process (thread group) id.
	PID int32
	// Thread is the thread the process was read through when its leader
	// (the thread whose id is PID) has exited, as after pthread_exit(3) in
	// main while other threads run on: the leader's /proc/PID/exe is gone
	// and its credentials are frozen at its exit, so the executable, the
	// credentials and the cgroup are those of /proc/PID/task/Thread. Zero
	// when the leader runs.
	Thread int32
	// StartTime is the start time in clock ticks after boot (field 22 of
	// /proc/PID/stat); with PID it identifies the process.
	StartTime uint64
	// Exe is the executable's path as readlink(/proc/PID/exe) gives it to
	// the agent, without the " (deleted)" suffix. Empty for a kernel
	// thread.
	Exe string
	// Deleted is true when the executable has been unlinked (the link
	// ended in " (deleted)" and the file has no links left).
	Deleted bool
	// ExeID identifies the executable file (stat of /proc/PID/exe).
	ExeID ExeID
	// KernelThread is true for a kernel thread (no executable).
	KernelThread bool
	// UID and GID are the real user and group ids (first values of the
	// Uid: and Gid: lines of /proc/PID/status).
	UID, GID uint32
	// Groups are the supplementary groups (the Groups: line).
	Groups []uint32
	// Comm is the process name (the Name: line: at most 15 bytes, with
	// the kernel's escapes of "\n" and "\\" kept).
	Comm string
	// Container is the process's container, when Options.Environ is set.
	Container Container
	// Pod is the process's Kubernetes pod; nil for now.
	Pod *Pod
}

// Defaults for Options fields left zero.
const (
	DefaultCacheSize     = 8192
	DefaultHashCacheSize = 4096
	DefaultMaxHashSize   = 512 << 20
)

// Options tune a Resolver. The zero value is usable.
type Options struct {
	// CacheSize bounds the processes remembered (least recently used
	// goes first). DefaultCacheSize when <= 0.
	CacheSize int
	// HashCacheSize bounds the executable hashes remembered.
	// DefaultHashCacheSize when <= 0.
	HashCacheSize int
	// MaxHashSize is the largest executable SHA256 reads, in bytes.
	// DefaultMaxHashSize when <= 0.
	MaxHashSize int64
	// Environ, when set, gives each process's container. It must read
	// the same root as the Resolver. Nil leaves Process.Container empty.
	Environ *environ.Resolver
	// Cgroups, instead of Environ, takes the container from the process's
	// cgroup file alone (environ.ParseCgroup): one small read, which is
	// what the agent needs per new process. Environ's full detection also
	// reads the process's mounts and environment.
	Cgroups bool
}

// Stats counts what the caches did, for metrics. Counters only grow.
type Stats struct {
	// Hits are lookups answered from the cache after revalidation.
	Hits uint64
	// Misses are lookups that read the process from /proc, including
	// Stale ones.
	Misses uint64
	// Stale are hits whose revalidation found a new executable or new
	// credentials, so the process was read again.
	Stale uint64
	// Gone are lookups that failed with ErrGone (not those that failed
	// with ErrUnidentified).
	Gone uint64
	// HashHits are SHA256 calls answered from the hash cache.
	HashHits uint64
	// HashReads are executables read and hashed.
	HashReads uint64
	// HashShared are SHA256 calls that waited for a read another call
	// had started for the same ExeID.
	HashShared uint64
	// Processes and Hashes are the current cache sizes.
	Processes, Hashes int
}

// key identifies a process in the cache: ino for a pidfs pidfd, else pid
// and start time. The two kinds never collide because ino is zero in the
// second.
type key struct {
	ino   uint64
	pid   int32
	start uint64
}

// Resolver looks processes up and caches them. It is safe for concurrent
// use.
type Resolver struct {
	root     string
	procDir  []byte // root + "/proc/"
	opts     Options
	pidfs    atomic.Int32 // 0 unknown, 1 pidfds are on pidfs, 2 not
	pidfdGet atomic.Int32 // 0 unknown, 1 PIDFD_GET_INFO works, 2 not

	mu    sync.Mutex
	procs *lru[key, *Process]

	cgOnce   sync.Once
	cgOwners *environ.CgroupOwners // with Options.Cgroups; nil believes every cgroup name

	hmu      sync.Mutex
	hashes   *lru[ExeID, [32]byte]
	inflight map[ExeID]*flight

	hits, misses, stale, gone         atomic.Uint64
	hashHits, hashReads, hashedShared atomic.Uint64
}

// NewResolver makes a Resolver reading the machine below root ("/" for the
// live machine; "" means "/").
func NewResolver(root string, opts Options) *Resolver {
	if root == "" {
		root = "/"
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.HashCacheSize <= 0 {
		opts.HashCacheSize = DefaultHashCacheSize
	}
	if opts.MaxHashSize <= 0 {
		opts.MaxHashSize = DefaultMaxHashSize
	}
	dir := filepath.Join(root, "proc") + "/"
	return &Resolver{
		root:     root,
		procDir:  []byte(dir),
		opts:     opts,
		procs:    newLRU[key, *Process](opts.CacheSize),
		hashes:   newLRU[ExeID, [32]byte](opts.HashCacheSize),
		inflight: map[ExeID]*flight{},
	}
}

// Stats returns the counters and cache sizes.
func (r *Resolver) Stats() Stats {
	r.mu.Lock()
	np := r.procs.len()
	r.mu.Unlock()
	r.hmu.Lock()
	nh := r.hashes.len()
	r.hmu.Unlock()
	return Stats{
		Hits: r.hits.Load(), Misses: r.misses.Load(), Stale: r.stale.Load(), Gone: r.gone.Load(),
		HashHits: r.hashHits.Load(), HashReads: r.hashReads.Load(), HashShared: r.hashedShared.Load(),
		Processes: np, Hashes: nh,
	}
}
