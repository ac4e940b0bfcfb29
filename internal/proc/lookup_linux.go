package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
// credentials unchanged; otherwise /proc/PID is read. The returned Process
// is shared: do not modify it.
//
// A failure is a *LookupError, matching ErrGone when the process has
// exited and ErrUnidentified otherwise: it still runs, or its pid is not
// valid (fanotify reports 0 for a process outside the agent's PID
// namespace). A failure of a running process is retried once first: it
// may have raced with its leader's exit.
func (r *Resolver) Lookup(pid int32, pidfd int) (*Process, error) {
	if pid <= 0 {
		return nil, &LookupError{PID: pid, Step: "identify", Err: errInvalidPID}
	}
	p, step, err := r.lookup(pid, pidfd)
	if err == nil {
		return p, nil
	}
	gone := r.exited(pid, pidfd, err)
	if !gone {
		if p, step, err = r.lookup(pid, pidfd); err == nil {
			return p, nil
		}
		gone = r.exited(pid, pidfd, err)
	}
	if gone {
		r.gone.Add(1)
	}
	return nil, &LookupError{PID: pid, Step: step, Gone: gone, Err: err}
}

// lookup is one attempt of Lookup; step names what failed.
func (r *Resolver) lookup(pid int32, pidfd int) (*Process, string, error) {
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
			return nil, "identify", err
		}
	}
	if usePidfd {
		p, fresh, err = r.cachedByPidfd(pid, pidfd, k, pb[:])
	} else {
		p, fresh, k, err = r.cachedByStart(pid, pidfd, pb[:])
	}
	if err != nil {
		return nil, "check", err
	}
	if fresh {
		r.hits.Add(1)
		return p, "", nil
	}
	if p != nil {
		r.stale.Add(1)
	}
	r.misses.Add(1)
	p, err = r.load(pid, pidfd, usePidfd, k, pb[:])
	if err != nil {
		return nil, "read", err
	}
	r.mu.Lock()
	r.procs.put(k, p)
	r.mu.Unlock()
	return p, "", nil
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

// Internal causes; Lookup reports them as ErrGone or ErrUnidentified
// (LookupError), so that a cause alone never says a running process is
// gone.
var (
	// errExited: a /proc read found the process (or the thread read)
	// exited.
	errExited = errors.New("exited")
	// errReused: the start time changed between reads, so the process
	// first read has exited and its PID names another.
	errReused = errors.New("start time changed (pid reused)")
	// errInvalidPID: a pid of 0 or less names no process.
	errInvalidPID = errors.New("invalid pid")
)

// exited tells whether the process of a failed lookup has exited: its
// start time changed during the lookup, its pidfd says it was reaped, or
// /proc/PID has no thread that is running. It is checked after the
// failure, whatever the failure was: a process with a running thread may
// be the one waiting for an answer (the thread blocked in the event holds
// the PID), so it is never called gone. When the PID was reused by
// another process, calling it running only makes the caller stricter.
func (r *Resolver) exited(pid int32, pidfd int, err error) bool {
	if errors.Is(err, errReused) {
		return true
	}
	if pidfd >= 0 && pidfdAlive(pidfd) == unix.ESRCH {
		return true
	}
	_, terr := r.liveTask(pid, true)
	return errors.Is(terr, errExited)
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

// sameExe compares the result of a stat of p's executable with p. A
// missing executable is a change, not an error, unless p is a kernel
// thread: the leader may have exited while other threads run on, and load
// tells.
func sameExe(p *Process, st *unix.Stat_t, err error) (bool, error) {
	switch {
	case err == nil:
		return !p.KernelThread && exeIDOf(st) == p.ExeID, nil
	case err == unix.ENOENT:
		return p.KernelThread, nil
	case err == unix.ESRCH:
		return false, err
	}
	return false, fmt.Errorf("stat exe: %w", err)
}

// cachedByPidfd finds the process keyed by its pidfs inode and
// revalidates it: the executable is stat'ed, then the credentials are
// read with PIDFD_GET_INFO, whose success also says the process was alive
// after the stat, so the stat was of this process. fresh is false (with p
// set) when the entry is stale, and p is nil when there is none. A
// process read through a thread (its leader exited) is revalidated
// through that thread's status: PIDFD_GET_INFO gives the leader's
// credentials, frozen at its exit.
func (r *Resolver) cachedByPidfd(pid int32, pidfd int, k key, pb []byte) (p *Process, fresh bool, err error) {
	if p = r.cached(k, pid); p == nil {
		return nil, false, nil
	}
	var st unix.Stat_t
	same, err := sameExe(p, &st, statPath(r.taskPath(pb, pid, p.Thread, "exe"), &st))
	if err != nil || !same {
		return p, false, err
	}
	if p.Thread == 0 && r.pidfdGet.Load() != 2 {
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
	s, err := r.readStatus(pid, p.Thread)
	if err != nil {
		if p.Thread != 0 && errors.Is(err, errExited) {
			return p, false, nil // that thread exited: load reads another
		}
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
	if exeErr == unix.ENOENT {
		return r.cachedNoExe(pid, pidfd, pb)
	}
	if exeErr != nil {
		if gone(exeErr) {
			return nil, false, key{}, exeErr
		}
		return nil, false, key{}, fmt.Errorf("stat exe: %w", exeErr)
	}
	s, err := r.readStatus(pid, 0)
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
	if p.Thread != 0 {
		// Read through a thread, and now the leader has an executable:
		// a thread exec'd and took the leader's place.
		return p, false, k, nil
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

// cachedNoExe is cachedByStart for a process whose /proc/PID/exe is
// missing: a kernel thread, or a process whose leader exited, revalidated
// through the thread it was read through (or a zombie). It reads the start
// time first, to find the entry, and again last, to see that the reads
// were of that process. Anything unexpected makes the entry stale: load
// then tells what happened.
func (r *Resolver) cachedNoExe(pid int32, pidfd int, pb []byte) (p *Process, fresh bool, k key, err error) {
	start, err := r.readStart(pid, pb)
	if err != nil {
		return nil, false, key{}, err
	}
	k = key{pid: pid, start: start}
	if p = r.cached(k, pid); p == nil || (!p.KernelThread && p.Thread == 0) {
		return p, false, k, nil
	}
	var st unix.Stat_t
	if same, err := sameExe(p, &st, statPath(r.taskPath(pb, pid, p.Thread, "exe"), &st)); err != nil || !same {
		return p, false, k, nil
	}
	s, err := r.readStatus(pid, p.Thread)
	if err != nil || !sameCreds(p, &s) {
		return p, false, k, nil
	}
	if now, err := r.readStart(pid, pb); err != nil || now != start {
		return p, false, k, nil
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

// taskFile is the path of name in /proc/PID/task/TID/, or in /proc/PID/
// when tid is 0.
func (r *Resolver) taskFile(pid, tid int32, name string) string {
	if tid == 0 {
		return r.procFile(pid, name)
	}
	return r.procFile(pid, "task/"+strconv.FormatInt(int64(tid), 10)+"/"+name)
}

// smallBufSize is the stack buffer for /proc/PID/status and cgroup (about
// 1.5 KiB and 100 bytes). os.ReadFile costs half as much again here as
// the read itself (an fstat, a heap buffer grown in steps).
const smallBufSize = 4096

// readSmall reads name of process pid (of its thread tid, when not 0)
// into buf, or into the heap when it does not fit (a status listing
// thousands of supplementary groups).
func (r *Resolver) readSmall(pid, tid int32, name string, buf []byte) ([]byte, error) {
	var pb [pathBufSize]byte
	b, err := readPath(r.taskPath(pb[:], pid, tid, name), buf)
	if err == unix.ENOBUFS {
		return os.ReadFile(r.taskFile(pid, tid, name))
	}
	return b, err
}

// readStatus reads /proc/PID/status, or /proc/PID/task/TID/status when
// tid is not 0; a zombie counts as exited.
func (r *Resolver) readStatus(pid, tid int32) (Status, error) {
	var buf [smallBufSize]byte
	b, err := r.readSmall(pid, tid, "status", buf[:])
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return Status{}, fmt.Errorf("read status: %w: %w", errExited, err)
		}
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	st, err := parseStatus(b)
	if err != nil {
		return Status{}, err
	}
	if st.State == 'Z' || st.State == 'X' {
		return Status{}, fmt.Errorf("status: state %c: %w", st.State, errExited)
	}
	return st, nil
}

// liveTask returns a thread of process pid that is running (its status
// is readable and its state neither Z nor X), trying them in the order
// /proc/PID/task lists them (by thread id): the leader too when leader is
// set, otherwise only the other threads. With none running it returns 0,
// and an error wrapping errExited when leader is set, unless a thread's
// status could not be read for another reason (then that error: nothing
// says it exited). Without a task list (a fixture tree) the leader is
// the only thread.
func (r *Resolver) liveTask(pid int32, leader bool) (int32, error) {
	f, err := os.Open(r.procFile(pid, "task"))
	if err != nil {
		if !gone(err) {
			return 0, fmt.Errorf("read tasks: %w", err)
		}
		if !leader {
			return 0, nil
		}
		if _, err := r.readStatus(pid, 0); err != nil {
			return 0, err
		}
		return pid, nil
	}
	defer f.Close()
	var unreadable error
	for {
		names, err := f.Readdirnames(64)
		for _, n := range names {
			v, perr := strconv.ParseInt(n, 10, 32)
			tid := int32(v)
			if perr != nil || tid <= 0 || (!leader && tid == pid) {
				continue
			}
			_, serr := r.readStatus(pid, tid)
			if serr == nil {
				return tid, nil
			}
			if !errors.Is(serr, errExited) {
				unreadable = serr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read tasks: %w", err)
		}
	}
	switch {
	case unreadable != nil:
		return 0, unreadable
	case leader:
		return 0, fmt.Errorf("no thread running: %w", errExited)
	}
	return 0, nil
}

// deletedSuffix is what the kernel appends to the path of an unlinked
// file (d_path).
const deletedSuffix = " (deleted)"

// readExe reads the executable of process pid, through its thread tid
// when not 0, into p: its path, identity and whether it was deleted.
// found is false when there is no executable (the link is missing).
func (r *Resolver) readExe(p *Process, tid int32, pb []byte) (found bool, err error) {
	pid := p.PID
	for attempt := 0; ; attempt++ {
		// stat, readlink, stat: a process exec'ing between the calls
		// would pair one program's path with another's identity.
		var st1, st2 unix.Stat_t
		err := statPath(r.taskPath(pb, pid, tid, "exe"), &st1)
		if err == unix.ENOENT {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("stat exe: %w", err)
		}
		target, err := os.Readlink(r.taskFile(pid, tid, "exe"))
		if err != nil {
			return false, fmt.Errorf("readlink exe: %w", err)
		}
		if err := statPath(r.taskPath(pb, pid, tid, "exe"), &st2); err != nil {
			return false, fmt.Errorf("stat exe: %w", err)
		}
		if exeIDOf(&st1) != exeIDOf(&st2) {
			if attempt >= 3 {
				return false, fmt.Errorf("executable keeps changing: %w", ErrChanged)
			}
			continue
		}
		p.ExeID = exeIDOf(&st1)
		p.Exe, p.Deleted = target, false
		if t, ok := strings.CutSuffix(target, deletedSuffix); ok && st1.Nlink == 0 {
			p.Exe, p.Deleted = t, true
		}
		return true, nil
	}
}

// readNoExe reads a process whose /proc/PID/exe is missing: a kernel
// thread, a zombie, or a process whose leader exited while other threads
// run on (pthread_exit(3) in main), which is read through one of those
// (Process.Thread). A thread that exits while it is read is replaced by
// another.
func (r *Resolver) readNoExe(p *Process, pb []byte) (Status, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		tid, err := r.liveTask(p.PID, false)
		if err != nil {
			return Status{}, err
		}
		if tid == 0 {
			// No other thread runs: a kernel thread, or a zombie.
			st, err := r.readStatus(p.PID, 0)
			p.KernelThread = err == nil
			return st, err
		}
		found, err := r.readExe(p, tid, pb)
		if err == nil && !found {
			err = fmt.Errorf("thread %d: no exe: %w", tid, errExited)
		}
		if err == nil {
			var st Status
			if st, err = r.readStatus(p.PID, tid); err == nil {
				p.Thread = tid
				return st, nil
			}
		}
		last = err
	}
	return Status{}, fmt.Errorf("threads exit while read: %w", last)
}

// load reads the process from /proc: executable, status, container, and
// then checks it is still the process k names.
func (r *Resolver) load(pid int32, pidfd int, usePidfd bool, k key, pb []byte) (*Process, error) {
	p := &Process{PID: pid}
	found, err := r.readExe(p, 0, pb)
	if err != nil {
		return nil, err
	}
	var st Status
	if found {
		st, err = r.readStatus(pid, 0)
	} else {
		st, err = r.readNoExe(p, pb)
	}
	if err != nil {
		return nil, err
	}
	p.UID, p.GID, p.Groups, p.Comm = st.UID, st.GID, st.Groups, st.Name
	if r.opts.Cgroups {
		// One small file: the container is the one the cgroup names, if
		// only root could have named that cgroup.
		var buf [smallBufSize]byte
		if b, err := r.readSmall(pid, p.Thread, "cgroup", buf[:]); err == nil {
			if cc, line, _ := environ.ParseCgroupLine(bytes.NewReader(b)); cc.ID != "" {
				r.cgOnce.Do(func() { r.cgOwners = environ.NewCgroupOwners(r.root) })
				if err := r.cgOwners.Check(line); err != nil {
					p.Container = Container{Rejected: err.Error()}
				} else {
					p.Container = Container{ID: cc.ID, Runtime: cc.Runtime, Kubernetes: cc.Kubernetes, PodUID: cc.PodUID}
				}
			}
		}
	} else if e := r.opts.Environ; e != nil {
		// An exited leader's mounts and namespaces went with it: read
		// its thread's (/proc/TID), and see that the thread is still the
		// process's afterwards, so that TID was not reused meanwhile.
		id := pid
		if p.Thread != 0 {
			id = p.Thread
		}
		info, _, err := e.Lookup(int(id))
		if err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
		if p.Thread != 0 {
			var tst unix.Stat_t
			if err := statPath(r.taskPath(pb, pid, p.Thread, "stat"), &tst); err != nil {
				return nil, fmt.Errorf("container: thread %d: %w: %w", p.Thread, errExited, err)
			}
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
		return nil, errReused
	}
	if usePidfd || pidfd >= 0 {
		if err := pidfdAlive(pidfd); err != nil {
			return nil, fmt.Errorf("pidfd: %w", err)
		}
	}
	return p, nil
}
