package proc

import (
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
	k, usePidfd, err := r.key(pid, pidfd, pb[:])
	if err != nil {
		return nil, r.fail(pid, "identify", err)
	}
	r.mu.Lock()
	p, ok := r.procs.get(k)
	r.mu.Unlock()
	if ok && p.PID == pid { // a pidfd of another process is a caller bug: read afresh
		fresh, err := r.revalidate(p, pidfd, usePidfd, k, pb[:])
		if err != nil {
			return nil, r.fail(pid, "revalidate", err)
		}
		if fresh {
			r.hits.Add(1)
			return p, nil
		}
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

// key identifies the process: by the pidfd's pidfs inode when there is
// one, else by pid and start time.
func (r *Resolver) key(pid int32, pidfd int, pb []byte) (key, bool, error) {
	if pidfd >= 0 && r.pidfs.Load() != 2 {
		var st unix.Stat_t
		if err := fstatFd(pidfd, &st); err != nil {
			return key{}, false, fmt.Errorf("fstat pidfd: %w", err)
		}
		if r.pidfs.Load() == 0 {
			ok, err := onPidfs(pidfd)
			if err != nil {
				return key{}, false, fmt.Errorf("statfs pidfd: %w", err)
			}
			if ok {
				r.pidfs.Store(1)
			} else {
				r.pidfs.Store(2)
			}
		}
		if r.pidfs.Load() == 1 {
			return key{ino: st.Ino}, true, nil
		}
	}
	start, err := r.readStart(pid, pb)
	if err != nil {
		return key{}, false, err
	}
	return key{pid: pid, start: start}, false, nil
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

// revalidate reports whether the cached p still describes the process:
// same executable, same real uid and gid (and groups, where they are
// read), and alive.
func (r *Resolver) revalidate(p *Process, pidfd int, usePidfd bool, k key, pb []byte) (bool, error) {
	var st unix.Stat_t
	err := statPath(r.procPath(pb, p.PID, "exe"), &st)
	switch {
	case err == nil:
		if p.KernelThread || exeIDOf(&st) != p.ExeID {
			return false, nil
		}
	case err == unix.ENOENT && p.KernelThread:
	case gone(err):
		return false, err
	default:
		return false, fmt.Errorf("stat exe: %w", err)
	}
	if usePidfd && r.pidfdGet.Load() != 2 {
		uid, gid, err := pidfdCreds(pidfd)
		switch err {
		case nil:
			r.pidfdGet.Store(1)
			// Success also says the process was alive after the stat
			// above, so the stat was of this process.
			return uid == p.UID && gid == p.GID, nil
		case unix.ENOTTY, unix.EINVAL:
			r.pidfdGet.Store(2) // before Linux 6.13: read status
		default:
			return false, fmt.Errorf("pidfd info: %w", err)
		}
	}
	st2, err := r.readStatus(p.PID)
	if err != nil {
		return false, err
	}
	same := st2.UID == p.UID && st2.GID == p.GID && slices.Equal(st2.Groups, p.Groups)
	if err := r.stillThere(p.PID, pidfd, usePidfd, k, pb); err != nil {
		return false, err
	}
	return same, nil
}

// stillThere checks, after the reads, that the process read is still the
// one identified by k: the pidfd's process is alive, or the start time is
// unchanged.
func (r *Resolver) stillThere(pid int32, pidfd int, usePidfd bool, k key, pb []byte) error {
	if usePidfd {
		if err := pidfdAlive(pidfd); err != nil {
			return fmt.Errorf("pidfd: %w", err)
		}
		return nil
	}
	start, err := r.readStart(pid, pb)
	if err != nil {
		return err
	}
	if start != k.start {
		return fmt.Errorf("start time changed (pid reused): %w", ErrGone)
	}
	return nil
}

func (r *Resolver) procFile(pid int32, name string) string {
	return string(r.procDir) + strconv.FormatInt(int64(pid), 10) + "/" + name
}

// readStatus reads /proc/PID/status; a zombie counts as gone.
func (r *Resolver) readStatus(pid int32) (Status, error) {
	b, err := os.ReadFile(r.procFile(pid, "status"))
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
	if e := r.opts.Environ; e != nil {
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
