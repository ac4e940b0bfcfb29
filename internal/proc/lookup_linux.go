package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/environ"
)

// Sizes of the stack buffers of the hit path: a /proc path under a root of
// up to about 90 bytes, and a /proc/PID/stat line (about 300 bytes; the
// name is at most 64).
const (
	pathBufSize = 128
	statBufSize = 1024
)

// Lookup returns the process pid, the one behind an event; pidfd is the
// event's pidfd (fanotify's FAN_REPORT_PIDFD), or negative when there is
// none. The answer comes from the cache when the process is known and
// revalidation (see the package comment) finds its executable and
// credentials unchanged; otherwise /proc/PID is read. A process that has
// exited gives an error wrapping ErrGone. The returned Process is shared:
// do not modify it.
func (r *Resolver) Lookup(pid int32, pidfd int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("proc: lookup: invalid pid %d", pid)
	}
	var pb [pathBufSize]byte
	var (
		p     *Process
		fresh bool
		k     key
		err   error
	)
	usePidfd := false
	if pidfd >= 0 {
		k, usePidfd, err = r.pidfdKey(pidfd)
		if err != nil {
			return nil, r.fail(pid, "identify", err)
		}
	}
	if usePidfd {
		p, fresh, err = r.cachedByPidfd(pid, pidfd, k, pb[:])
	} else {
		p, fresh, k, err = r.cachedByStart(pid, pidfd, pb[:])
	}
	if err != nil {
		return nil, r.fail(pid, "check", err)
	}
	if fresh {
		r.hits.Add(1)
		return p, nil
	}
	if p != nil {
		r.stale.Add(1)
	}
	r.misses.Add(1)
	p, err = r.load(pid, pidfd, usePidfd, k, pb[:])
	if err != nil {
		return nil, r.fail(pid, "read", err)
	}
	r.mu.Lock()
	r.procs.put(k, p)
	r.mu.Unlock()
	return p, nil
}

// cached returns the cache entry for k if it is about pid (a pidfd of
// another process is a caller bug: such an entry is read afresh).
func (r *Resolver) cached(k key, pid int32) *Process {
	r.mu.Lock()
	p, ok := r.procs.get(k)
	r.mu.Unlock()
	if !ok || p.PID != pid {
		return nil
	}
	return p
}

// Forget drops every cached entry of pid (call it when the agent learns
// that the process exited, to free the slot early). Entries are found by
// PID, so this walks the cache; it is not for the event path.
func (r *Resolver) Forget(pid int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []key
	for k, n := range r.procs.items {
		if n.val.PID == pid {
			ks = append(ks, k)
		}
	}
	for _, k := range ks {
		r.procs.remove(k)
	}
}

// fail wraps err with the pid and step, adding ErrGone when err says the
// process is gone.
func (r *Resolver) fail(pid int32, step string, err error) error {
	if gone(err) || errors.Is(err, ErrGone) || errors.Is(err, environ.ErrNoProcess) {
		r.gone.Add(1)
		if errors.Is(err, ErrGone) {
			return fmt.Errorf("proc: pid %d: %s: %w", pid, step, err)
		}
		return fmt.Errorf("proc: pid %d: %s: %w: %w", pid, step, ErrGone, err)
	}
	return fmt.Errorf("proc: pid %d: %s: %w", pid, step, err)
}

// pidfdKey returns the cache key of the pidfd's process, its pidfs inode,
// and false when pidfds are not on pidfs here (before Linux 6.9).
func (r *Resolver) pidfdKey(pidfd int) (key, bool, error) {
	if r.pidfs.Load() == 2 {
		return key{}, false, nil
	}
	var st unix.Stat_t
	if err := fstatFd(pidfd, &st); err != nil {
		return key{}, false, fmt.Errorf("fstat pidfd: %w", err)
	}
	if r.pidfs.Load() == 0 {
		ok, err := onPidfs(pidfd)
		if err != nil {
			return key{}, false, fmt.Errorf("statfs pidfd: %w", err)
		}
		if !ok {
			r.pidfs.Store(2)
			return key{}, false, nil
		}
		r.pidfs.Store(1)
	}
	return key{ino: st.Ino}, true, nil
}

// readStart reads the start time from /proc/PID/stat.
func (r *Resolver) readStart(pid int32, pb []byte) (uint64, error) {
	var buf [statBufSize]byte
	b, err := readPath(r.procPath(pb, pid, "stat"), buf[:])
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	start, err := ParseStatStart(b)
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	return start, nil
}

// sameExe compares the result of a stat of /proc/PID/exe with p.
func sameExe(p *Process, st *unix.Stat_t, err error) (bool, error) {
	switch {
	case err == nil:
		return !p.KernelThread && exeIDOf(st) == p.ExeID, nil
	case err == unix.ENOENT && p.KernelThread:
		return true, nil
	case gone(err):
		return false, err
	}
	return false, fmt.Errorf("stat exe: %w", err)
}

// cachedByPidfd finds the process keyed by its pidfs inode and
// revalidates it: the executable is stat'ed, then the credentials are
// read with PIDFD_GET_INFO, whose success also says the process was alive
// after the stat, so the stat was of this process. fresh is false (with p
// set) when the entry is stale, and p is nil when there is none.
func (r *Resolver) cachedByPidfd(pid int32, pidfd int, k key, pb []byte) (p *Process, fresh bool, err error) {
	if p = r.cached(k, pid); p == nil {
		return nil, false, nil
	}
	var st unix.Stat_t
	same, err := sameExe(p, &st, statPath(r.procPath(pb, pid, "exe"), &st))
	if err != nil || !same {
		return p, false, err
	}
	if r.pidfdGet.Load() != 2 {
		uid, gid, err := pidfdCreds(pidfd)
		switch err {
		case nil:
			r.pidfdGet.Store(1)
			return p, uid == p.UID && gid == p.GID, nil
		case unix.ENOTTY, unix.EINVAL:
			r.pidfdGet.Store(2) // before Linux 6.13: read status
		default:
			return p, false, fmt.Errorf("pidfd info: %w", err)
		}
	}
	s, err := r.readStatus(pid)
	if err != nil {
		return p, false, err
	}
	if err := pidfdAlive(pidfd); err != nil {
		return p, false, fmt.Errorf("pidfd: %w", err)
	}
	return p, sameCreds(p, &s), nil
}

func sameCreds(p *Process, s *Status) bool {
	return s.UID == p.UID && s.GID == p.GID && slices.Equal(s.Groups, p.Groups)
}

// cachedByStart reads what it compares first (stat of the executable,
// status) and the key (the start time) last, then finds and compares the
// entry: when the start time matches, the process it names was alive
// before it was cached and after the reads, so the reads were of it. It
// returns the key for load.
func (r *Resolver) cachedByStart(pid int32, pidfd int, pb []byte) (p *Process, fresh bool, k key, err error) {
	var st unix.Stat_t
	exeErr := statPath(r.procPath(pb, pid, "exe"), &st)
	if exeErr != nil && exeErr != unix.ENOENT {
		if gone(exeErr) {
			return nil, false, key{}, exeErr
		}
		return nil, false, key{}, fmt.Errorf("stat exe: %w", exeErr)
	}
	s, err := r.readStatus(pid)
	if err != nil {
		return nil, false, key{}, err
	}
	start, err := r.readStart(pid, pb)
	if err != nil {
		return nil, false, key{}, err
	}
	k = key{pid: pid, start: start}
	if p = r.cached(k, pid); p == nil {
		return nil, false, k, nil
	}
	same, err := sameExe(p, &st, exeErr)
	if err != nil || !same || !sameCreds(p, &s) {
		return p, false, k, err
	}
	if pidfd >= 0 {
		if err := pidfdAlive(pidfd); err != nil {
			return p, false, k, fmt.Errorf("pidfd: %w", err)
		}
	}
	return p, true, k, nil
}

func (r *Resolver) procFile(pid int32, name string) string {
	return string(r.procDir) + strconv.FormatInt(int64(pid), 10) + "/" + name
}

// smallBufSize is the stack buffer for /proc/PID/status and cgroup (about
// 1.5 KiB and 100 bytes). os.ReadFile costs half as much again here as
// the read itself (an fstat, a heap buffer grown in steps).
const smallBufSize = 4096

// readSmall reads /proc/PID/name into buf, or into the heap when it does
// not fit (a status listing thousands of supplementary groups).
func (r *Resolver) readSmall(pid int32, name string, buf []byte) ([]byte, error) {
	var pb [pathBufSize]byte
	b, err := readPath(r.procPath(pb[:], pid, name), buf)
	if err == unix.ENOBUFS {
		return os.ReadFile(r.procFile(pid, name))
	}
	return b, err
}

// readStatus reads /proc/PID/status; a zombie counts as gone.
func (r *Resolver) readStatus(pid int32) (Status, error) {
	var buf [smallBufSize]byte
	b, err := r.readSmall(pid, "status", buf[:])
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return Status{}, fmt.Errorf("read status: %w: %w", ErrGone, err)
		}
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	st, err := parseStatus(b)
	if err != nil {
		return Status{}, err
	}
	if st.State == 'Z' || st.State == 'X' {
		return Status{}, fmt.Errorf("status: state %c: %w", st.State, ErrGone)
	}
	return st, nil
}

// deletedSuffix is what the kernel appends to the path of an unlinked
// file (d_path).
const deletedSuffix = " (deleted)"

// load reads the process from /proc: executable, status, container, and
// then checks it is still the process k names.
func (r *Resolver) load(pid int32, pidfd int, usePidfd bool, k key, pb []byte) (*Process, error) {
	p := &Process{PID: pid}
	exe := r.procFile(pid, "exe")
	noExe := false
	for attempt := 0; ; attempt++ {
		// stat, readlink, stat: a process exec'ing between the calls
		// would pair one program's path with another's identity.
		var st1, st2 unix.Stat_t
		err := statPath(r.procPath(pb, pid, "exe"), &st1)
		if err == unix.ENOENT {
			noExe = true // a kernel thread or a zombie: status tells
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stat exe: %w", err)
		}
		target, err := os.Readlink(exe)
		if err != nil {
			return nil, fmt.Errorf("readlink exe: %w", err)
		}
		if err := statPath(r.procPath(pb, pid, "exe"), &st2); err != nil {
			return nil, fmt.Errorf("stat exe: %w", err)
		}
		if exeIDOf(&st1) != exeIDOf(&st2) {
			if attempt >= 3 {
				return nil, fmt.Errorf("executable keeps changing: %w", ErrChanged)
			}
			continue
		}
		p.ExeID = exeIDOf(&st1)
		if t, ok := strings.CutSuffix(target, deletedSuffix); ok && st1.Nlink == 0 {
			target, p.Deleted = t, true
		}
		p.Exe = target
		break
	}
	st, err := r.readStatus(pid)
	if err != nil {
		return nil, err
	}
	p.KernelThread = noExe
	p.UID, p.GID, p.Groups, p.Comm = st.UID, st.GID, st.Groups, st.Name
	if r.opts.Cgroups {
		// One small file: the container is the one the cgroup names.
		var buf [smallBufSize]byte
		if b, err := r.readSmall(pid, "cgroup", buf[:]); err == nil {
			if cc, _ := environ.ParseCgroup(bytes.NewReader(b)); cc.ID != "" {
				p.Container = Container{ID: cc.ID, Runtime: cc.Runtime, Kubernetes: cc.Kubernetes, PodUID: cc.PodUID}
			}
		}
	} else if e := r.opts.Environ; e != nil {
		info, _, err := e.Lookup(int(pid))
		if err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
		if info.InContainer {
			p.Container = Container{ID: info.ID, Runtime: info.Runtime, Kubernetes: info.Kubernetes, PodUID: info.PodUID}
			if p.Container.Runtime == "" && info.Name != environ.RTKubernetes && info.Name != environ.RTContainerOther {
				p.Container.Runtime = info.Name
			}
		}
	}
	start, err := r.readStart(pid, pb)
	if err != nil {
		return nil, err
	}
	p.StartTime = start
	if !usePidfd && start != k.start {
		return nil, fmt.Errorf("start time changed (pid reused): %w", ErrGone)
	}
	if usePidfd || pidfd >= 0 {
		if err := pidfdAlive(pidfd); err != nil {
			return nil, fmt.Errorf("pidfd: %w", err)
		}
	}
	return p, nil
}
