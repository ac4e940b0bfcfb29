package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/cri"
	"github.com/drmfilter/drmfilter/internal/fanotify"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/proc"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// job is a covered event handed to a worker. Exactly one of the worker and
// the deadline timer answers it (claim), and the descriptors are closed
// when both are done with it (refs).
type job struct {
	ev fanotify.Event
	// byContainerPath: no policy covers the file by its host path, but
	// some policy names container paths; the worker decides once it knows
	// the process and the path it sees.
	byContainerPath bool
	op              policy.Operation
	path            string
	st              fanotify.FileStat
	class           storage.Info
	fsType          string
	state           *policyState
	start           time.Time
	answered        atomic.Bool
	refs            atomic.Int32
	timer           *time.Timer
}

func (j *job) claim() bool { return j.answered.CompareAndSwap(false, true) }

func opOf(mask uint64) policy.Operation {
	switch {
	case mask&fanotify.OpenExecPerm != 0:
		return policy.OpExec
	case mask&fanotify.AccessPerm != 0:
		return policy.OpRead
	default:
		return policy.OpOpen
	}
}

// readLoop reads events until ctx is done or the listener fails.
func (a *Agent) readLoop(ctx context.Context, jobs chan<- *job) error {
	buf := make([]byte, 64<<10)
	evs := make([]fanotify.Event, 0, len(buf)/24)
	pathBuf := make([]byte, 4096)
	for {
		batch, err := a.fan.ReadEvents(ctx, buf, evs[:0])
		for i := range batch {
			a.dispatch(&batch[i], jobs, pathBuf)
		}
		if err != nil {
			if errors.Is(err, fanotify.ErrClosed) || ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// respond answers one event, counting a failed write (the kernel then
// keeps waiting until the descriptor closes, which allows the event).
func (a *Agent) respond(fd int32, v fanotify.Verdict) {
	if err := a.fan.RespondAll([]fanotify.Response{{Fd: fd, Verdict: v}}); err != nil {
		a.stats.respondErrors.Add(1)
	}
}

// dispatch takes ownership of e: it answers and closes it, or hands it to a
// worker that will.
func (a *Agent) dispatch(e *fanotify.Event, jobs chan<- *job, pathBuf []byte) {
	handedOff := false
	defer func() {
		if !handedOff {
			e.Close()
		}
	}()
	switch {
	case e.IsOverflow():
		a.stats.overflows.Add(1)
		a.log.Warn("fanotify queue overflow: the kernel allowed events it could not queue")
		return
	case !e.IsPerm():
		return
	case e.Pid == a.selfPID:
		a.stats.self.Add(1)
		a.respond(e.Fd, fanotify.Allow)
		return
	}
	a.stats.total.Add(1)
	op := opOf(e.Mask)
	if e.Err != nil {
		a.fail(e.Fd, op, "", e.Pid, "malformed-event", a.failV)
		return
	}
	st, err := fanotify.Stat(e.Fd)
	if err != nil {
		a.fail(e.Fd, op, "", e.Pid, "internal-error", a.failV)
		return
	}
	mounts := a.mounts.Load()
	state := a.state.Load()
	var (
		path    string
		info    storage.Info
		covered bool
	)
	if ip, ok := a.index.lookup(st.Dev, st.Ino); ok {
		// A protected file: decided as the name it is indexed under (found
		// by the walk or an earlier decision, and kept current by the name
		// watcher), whatever name it was reached by (a hard link, a bind
		// mount, another mount namespace). Its path need not be resolved.
		a.stats.indexHits.Add(1)
		path, covered = ip, true
		_, info = mounts.Lookup(path)
	} else {
		p, err := fanotify.PathOf(e.Fd, pathBuf)
		if err != nil {
			// The file is on a marked filesystem and cannot be named (its
			// path is longer than the kernel will print, PATH_MAX): whether
			// a policy covers it is unknown, and a file someone buried too
			// deep to be named must not be the way around a policy. It is
			// denied whatever the failure mode; a protected file the index
			// knows is decided above by its identity, before this.
			a.fail(e.Fd, op, "", e.Pid, "unnamed-file", fanotify.Deny)
			return
		}
		path = string(p)
		if st.Nlink == 0 {
			// An unlinked file (an old version kept open, or reached
			// through a kept O_PATH handle after an editor replaced it by
			// rename): the kernel names it "<its last path> (deleted)",
			// which policies would not recognise (an extension, a glob
			// ending in one). It is decided as the name it had.
			path = strings.TrimSuffix(path, " (deleted)")
		}
		_, info = mounts.Lookup(path)
		in := policy.Input{Op: op, Path: path, FSType: info.FSType, StorageClass: string(info.Class)}
		covered = state.m.Decide(&in).Covered
	}
	if !covered && !state.m.HasContainerPaths() {
		a.stats.record(op, "uncovered")
		a.respond(e.Fd, fanotify.Allow)
		a.maybeIgnore(e.Fd, &st, state)
		return
	}
	j := &job{ev: *e, op: op, path: path, st: st, class: info, fsType: info.FSType, state: state, start: time.Now(), byContainerPath: !covered}
	if a.hook == nil && !state.m.NeedsHash() {
		// Nothing in this decision can block (no executable to read):
		// decide here, without the hand-off to a worker, which costs a
		// goroutine wake-up per event. The deferred Close closes the
		// descriptors j shares with e.
		a.decide(j)
		return
	}
	// From here the job owns the descriptors: the last of the worker and
	// the deadline timer to let go of it closes them.
	handedOff = true
	j.refs.Store(2)
	j.timer = time.AfterFunc(a.cfg.Deadline, func() { a.deadline(j) })
	select {
	case jobs <- j:
	default:
		if j.claim() {
			a.fail(j.ev.Fd, op, path, e.Pid, "queue-full", a.failVerdict(state))
		}
		a.finish(j)
	}
}

// finish is the worker's release of a job: it stops the deadline timer
// (releasing its share if it will not run) and then its own share.
func (a *Agent) finish(j *job) {
	if j.timer.Stop() {
		a.release(j)
	}
	a.release(j)
}

// maybeIgnore asks the kernel to stop reporting a file no policy covers,
// when that verdict is safe to cache for every process: a regular file with
// one name (another name might be protected) while ignore marks are on.
//
// With policies that name container paths no verdict holds for every
// process (another container may see the file under a protected path), so
// nothing is cached.
func (a *Agent) maybeIgnore(fd int32, st *fanotify.FileStat, state *policyState) {
	if !a.cfg.IgnoreMarksEnabled() || st.Nlink != 1 || st.Mode&0o170000 != 0o100000 || state.m.HasContainerPaths() {
		return
	}
	if a.state.Load() != state {
		return // the policy changed while deciding
	}
	if err := a.fan.IgnoreFd(fd, state.mask); err == nil {
		a.stats.ignoreMarks.Add(1)
	}
}

// fail answers an event that was not decided with v and records why,
// counting an allow separately: it is what got through without a decision.
//
// The record names the process: its executable and ids, or
// audit.UnknownID as the ids when it cannot be looked up, so that a
// failure never reads as root's. It is looked up before the answer, while
// the process still waits (after it, a denied process may be gone); the
// lookup is the resolver's, cached like every decision's, and writes no
// log, so it cannot wait on the opener.
func (a *Agent) fail(fd int32, op policy.Operation, path string, pid int32, reason string, v fanotify.Verdict) {
	rec := &audit.Record{Decision: "failure", Reason: reason, Verdict: verdictName(v), Mode: a.cfg.Mode, Operation: op.String(), Path: path,
		PID: pid, UID: audit.UnknownID, GID: audit.UnknownID, Env: a.envTag}
	if pid > 0 && reason != "process-lookup" {
		if p, err := a.procs.Lookup(pid, -1); err == nil {
			rec.Exe, rec.UID, rec.GID = p.Exe, p.UID, p.GID
		}
	}
	a.respond(fd, v)
	a.stats.failed(reason, v == fanotify.Allow)
	a.audit.Write(rec)
}

func verdictName(v fanotify.Verdict) string {
	if v == fanotify.Allow {
		return "allow"
	}
	return "deny"
}

// failVerdict is the answer of a deadline or a full queue for an event to
// be decided under state: the failure mode, except where a policy selects
// executables by hash. How long a hash takes is chosen by the subject (a
// sparse copy of an allowed program, as large as the filesystem lets it
// be, reads for seconds; several in parallel keep every worker busy), so
// with failureMode open whoever wanted the file could choose to be let
// through. A decision that may need a hash the agent cannot finish in
// time is a deny.
func (a *Agent) failVerdict(state *policyState) fanotify.Verdict {
	if state.m.NeedsHash() {
		return fanotify.Deny
	}
	return a.failV
}

// deadline answers a job by its failure verdict if the worker has not.
func (a *Agent) deadline(j *job) {
	if j.claim() {
		a.fail(j.ev.Fd, j.op, j.path, j.ev.Pid, "deadline", a.failVerdict(j.state))
	}
	a.release(j)
}

func (a *Agent) release(j *job) {
	if j.refs.Add(-1) == 0 {
		j.ev.Close()
	}
}

// worker decides covered events until jobs is closed.
func (a *Agent) worker(jobs <-chan *job) {
	for j := range jobs {
		a.decide(j)
		a.finish(j)
	}
}

func (a *Agent) decide(j *job) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("panic while deciding an event", "panic", r)
			if j.claim() {
				a.fail(j.ev.Fd, j.op, j.path, j.ev.Pid, "internal-error", a.failV)
			}
		}
	}()
	if a.hook != nil {
		a.hook()
	}
	if j.answered.Load() {
		return // the deadline passed while queued
	}
	if j.op == policy.OpOpen && a.grants.take(j.ev.Pid, j.st.Dev, j.st.Ino) && a.onlyExecOpens(j.ev.Pid) {
		// The open that execve makes right after the exec it was allowed:
		// part of the same exec, already decided (and the process already
		// looked up for it).
		if j.claim() {
			a.respond(j.ev.Fd, fanotify.Allow)
			a.stats.record(policy.OpExec, "allow")
			a.stats.grantAllows.Add(1)
		}
		return
	}
	p, err := a.procs.Lookup(j.ev.Pid, int(j.ev.PidFd))
	if err != nil {
		if j.claim() {
			// Only a process that has exited (proc.ErrGone) gets the
			// failure mode: nobody waits for that answer. One that still
			// runs (proc.ErrUnidentified) may be the very process blocked
			// in this event, and not knowing who it is must never let it
			// through (issue #17, case 17).
			v := a.failV
			if !errors.Is(err, proc.ErrGone) {
				v = fanotify.Deny
			}
			a.fail(j.ev.Fd, j.op, j.path, j.ev.Pid, "process-lookup", v)
			a.log.Debug("process lookup failed", "pid", j.ev.Pid, "error", err)
		}
		return
	}
	if a.exempt.applies(p, j.path) {
		if j.claim() {
			a.stats.exempt.Add(1)
			a.respond(j.ev.Fd, fanotify.Allow)
		}
		return
	}
	in := policy.Input{
		Op: j.op, Path: j.path, FSType: j.fsType, StorageClass: string(j.class.Class),
		Subject: a.subjectOf(j.ev.Pid, p),
		Env:     a.penv,
	}
	if p.Container.ID != "" {
		// A runtime without an ID is inherited from the agent's own
		// surroundings (the whole host runs in that container): such a
		// process is on the agent's host, not in a container of it.
		in.Subject.Container = policy.Container{ID: p.Container.ID, Runtime: p.Container.Runtime}
	}
	missing := a.podInfo(&in.Subject)
	if p.Container.Rejected != "" {
		// The cgroup names a container, but a user other than root could
		// have named it (issue #17, case 12): decided as a host process,
		// and the record says why.
		if missing != "" {
			missing += "; "
		}
		missing += "container not believed: " + p.Container.Rejected
	}
	if in.Subject.Container.InContainer() && j.state.m.HasContainerPaths() {
		if cp, ok := a.containerPath(j, p); ok {
			in.ContainerPath = cp
		} else {
			missing = joinMissing(missing, "container path")
		}
	}
	d := j.state.m.Decide(&in)
	if d.ExeNotHost {
		missing = exeNotHostReason(missing, p.Exe)
	}
	if !d.Covered {
		// Not covered for this process: a file covered only by its path
		// inside containers, opened by a process that does not see it
		// there.
		if j.claim() {
			a.respond(j.ev.Fd, fanotify.Allow)
			a.stats.record(j.op, "uncovered")
		}
		return
	}
	op := j.op
	if op == policy.OpOpen && d.Verdict != policy.Deny && j.state.m.Operations()&policy.OpExec != 0 {
		// The dynamic loader opening an ELF file, or an interpreter
		// opening the script its command line names, runs that file's
		// code without an execve of it: decided as an exec too, so that
		// `ld.so ./tool`, `sh x.sh` and `python3 x.py` cannot run what
		// may not be executed.
		if how := a.runsCode(p, j); how != "" {
			ein := in
			ein.Op = policy.OpExec
			if ed := j.state.m.Decide(&ein); ed.Covered && (ed.Verdict == policy.Deny || ed.WouldDeny) {
				d, op = ed, policy.OpExec
				if missing != "" {
					how += "; " + missing
				}
				missing = how
			}
		}
	}
	v := fanotify.Allow
	if d.Verdict == policy.Deny {
		v = fanotify.Deny
	}
	if !j.claim() {
		a.stats.late.Add(1)
		return
	}
	if j.op == policy.OpExec && v == fanotify.Allow {
		// Record the grant before answering: the kernel raises the
		// exec's open event only after this answer.
		a.grants.put(j.ev.Pid, j.st.Dev, j.st.Ino)
	}
	a.respond(j.ev.Fd, v)
	a.stats.observe(time.Since(j.start))
	if !j.byContainerPath {
		// Covered by its host path: other names of it are the same file.
		// (A file covered only by its path in a container is not: the
		// index would make host processes decide it as covered.)
		a.index.learn(j.st.Dev, j.st.Ino, j.path)
	}
	decision := "allow"
	switch {
	case d.Verdict == policy.Deny:
		decision = "deny"
	case d.WouldDeny:
		decision = "would-deny"
	case d.Audit:
		decision = "audit"
	}
	a.stats.record(op, decision)
	if !d.Audit {
		return
	}
	rec := &audit.Record{
		Decision: decision, Mode: modeOf(a.cfg.Mode, d), Policy: d.Policy, Rule: d.Rule,
		Operation: op.String(), Path: j.path, Dev: j.st.Dev, Ino: j.st.Ino,
		PID: j.ev.Pid, Exe: p.Exe, UID: p.UID, GID: p.GID,
		ContainerID: in.Subject.Container.ID, Runtime: in.Subject.Container.Runtime, Env: a.envTag, Reason: missing,
	}
	if pod := in.Subject.Pod; pod != nil {
		rec.Pod = pod.Namespace + "/" + pod.Name
	}
	if in.ContainerPath != "" && in.ContainerPath != j.path {
		rec.ContainerPath = in.ContainerPath
	}
	if d.WouldDeny {
		rec.Policy, rec.Rule = d.WouldPolicy, d.WouldRule
	}
	a.audit.Write(rec)
}

func modeOf(global string, d policy.Decision) string {
	if global == "audit" || d.WouldDeny {
		return "audit"
	}
	return "enforce"
}

// containerPath is the path under which the job's process sees its file.
// The path read from the event's descriptor is d_path of the file's mount:
// a host path when the agent can see that mount, the path in the
// container's own view when the mount exists only in the container's
// namespace. nspath tries each reading and keeps the one under which the
// file, looked up inside the process's root, is this very inode. For a
// chrooted process whose bind mount the agent cannot see, the path below
// the process's root directory is tried last, checked the same way.
//
// A process whose leader has exited (p.Thread) is seen through that
// thread: the leader's root, namespaces and mounts went with it. The
// checks against the event's inode make a reused thread id harmless.
func (a *Agent) containerPath(j *job, p *proc.Process) (string, bool) {
	id := int(j.ev.Pid)
	if p.Thread != 0 {
		id = int(p.Thread)
	}
	if cp, ok, err := a.ns.ContainerPathOf(id, j.path, j.st.Dev, j.st.Ino); err == nil && ok {
		return cp, true
	}
	procRoot := filepath.Join(a.cfg.HostRoot, "proc", strconv.Itoa(id), "root")
	root, err := os.Readlink(procRoot)
	if err != nil || !filepath.IsAbs(root) || root == "/" {
		return "", false
	}
	rest, ok := strings.CutPrefix(j.path, root)
	if !ok || rest == "" || rest[0] != '/' {
		return "", false
	}
	var st unix.Stat_t
	if err := unix.Stat(procRoot+rest, &st); err != nil || st.Dev != j.st.Dev || st.Ino != j.st.Ino {
		return "", false
	}
	return rest, true
}

// podInfo fills the subject's image and pod from the container runtime's
// cache. It never waits on the runtime: an unknown container is decided
// with what is known, and the returned note says what was missing, for the
// audit record.
func (a *Agent) podInfo(s *policy.Subject) string {
	if a.cri == nil || s.Container.ID == "" {
		return ""
	}
	info, state := a.cri.Cached(s.Container.ID)
	switch state {
	case cri.Known:
		s.Container.Image, s.Container.ImageID = info.Image, info.ImageRef
		if info.PodName != "" {
			labels := info.PodLabels
			if a.labels != nil && info.PodUID != "" {
				if l, ok := a.labels(info.PodUID); ok {
					labels = l
				}
			}
			s.Pod = &policy.Pod{Namespace: info.PodNamespace, Name: info.PodName, Labels: labels}
		}
		if len(info.Missing) > 0 {
			return "runtime did not give: " + strings.Join(info.Missing, ",")
		}
		return ""
	case cri.Pending:
		return "pod metadata pending"
	case cri.Missing:
		return "container unknown to the runtime"
	default:
		return "pod metadata unavailable"
	}
}

func joinMissing(a, b string) string {
	if a == "" {
		return b + " unknown"
	}
	return a + "; " + b + " unknown"
}

// execGrants remember allowed execs for the open event that follows.
//
// execve raises two permission events for the file it runs:
// FAN_OPEN_EXEC_PERM, then, once that is answered, FAN_OPEN_PERM for the
// same open. Without this, a rule that allows a program to execute a file
// would be overridden by the rules about opening it. A grant is taken by
// the first open of that file by that process, and expires quickly.
type execGrants struct {
	mu sync.Mutex
	m  map[grantKey]time.Time
}

type grantKey struct {
	pid      int32
	dev, ino uint64
}

const grantTTL = 5 * time.Second

func (g *execGrants) put(pid int32, dev, ino uint64) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[grantKey]time.Time{}
	}
	if len(g.m) > 1024 {
		for k, t := range g.m {
			if now.Sub(t) > grantTTL {
				delete(g.m, k)
			}
		}
	}
	g.m[grantKey{pid, dev, ino}] = now
}

func (g *execGrants) take(pid int32, dev, ino uint64) bool {
	k := grantKey{pid, dev, ino}
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.m[k]
	if ok {
		delete(g.m, k)
	}
	return ok && time.Since(t) <= grantTTL
}
