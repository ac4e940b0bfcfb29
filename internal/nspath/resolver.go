package nspath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// Defaults for Options fields left zero.
const (
	// DefaultTTL is how long a namespace's mount table is reused before it
	// is read again.
	DefaultTTL = time.Second
	// DefaultRetryAfter is the age after which a table that gave no answer
	// is read again at once, in case the mount the answer needs is newer
	// than the table.
	DefaultRetryAfter = 100 * time.Millisecond
	// DefaultMaxNamespaces bounds the number of cached tables.
	DefaultMaxNamespaces = 512
)

var (
	// ErrNotSupported is returned off Linux: there is no /proc/PID/root
	// and no mount namespace there.
	ErrNotSupported = errors.New("not supported on this platform")
	// ErrInvalid is matched by errors for arguments no process can have:
	// a pid below 1, a relative path.
	ErrInvalid = errors.New("invalid argument")
	// ErrTooManyLinks is matched when resolving a container path meets
	// more than 40 symbolic links, as the kernel's ELOOP limit.
	ErrTooManyLinks = errors.New("too many levels of symbolic links")
)

// Error describes a failed translation: which operation, for which
// process and path, and why. Err is wrapped (errors.Is, errors.As reach
// it); a process that is gone shows as fs.ErrNotExist.
type Error struct {
	// Op is "container path", "host path" or "namespace".
	Op string
	// PID is the process whose view was asked for.
	PID int
	// Path is the path as given.
	Path string
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("nspath: %s of pid %d: %v", e.Op, e.PID, e.Err)
	}
	return fmt.Sprintf("nspath: %s of %q for pid %d: %v", e.Op, e.Path, e.PID, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Options configure a Resolver. The zero value is the production setting.
type Options struct {
	// TTL is how long a parsed mount table is reused. Zero means
	// DefaultTTL; a negative TTL never expires tables, leaving it to
	// Invalidate and Flush.
	TTL time.Duration
	// RetryAfter: when ContainerPath finds no answer in tables at least
	// this old, it reads them again once and retries, so a volume mounted
	// a moment ago is not reported invisible for a whole TTL. Zero means
	// DefaultRetryAfter; negative disables the retry.
	RetryAfter time.Duration
	// MaxNamespaces bounds how many tables are cached; the oldest goes
	// first. Zero means DefaultMaxNamespaces.
	MaxNamespaces int
	// SelfRoot is the directory under which the agent's own
	// /proc/self/mountinfo is read: its own mount namespace, where the
	// paths it reads from event descriptors live. Empty means "/", also
	// in a pod whose Resolver root is "/host", because the agent's own
	// view is its own /proc; tests point it at a fixture tree.
	SelfRoot string
	// Now is the clock; nil means time.Now. Tests replace it.
	Now func() time.Time
}

// Resolver translates paths between the agent's mount namespace and those
// of other processes, caching one parsed mount table per view. It is safe
// for concurrent use.
type Resolver struct {
	root       string
	procDir    string // <root>/proc/
	selfRoot   string
	selfProc   string // <SelfRoot>/proc/
	ttl        time.Duration
	retryAfter time.Duration
	max        int
	now        func() time.Time

	mu    sync.Mutex
	views map[viewKey]*view
	self  *view
}

// viewKey identifies a process's view of the mounts. /proc/PID/mountinfo
// lists mount points relative to the process's root directory (proc(5)),
// so two processes of one mount namespace see different tables when one
// is chrooted: the key is the namespace plus the root directory.
type viewKey struct {
	// ns is the inode of /proc/PID/ns/mnt (mount_namespaces(7)).
	ns uint64
	// rootDev and rootIno identify the directory /proc/PID/root leads to.
	rootDev, rootIno uint64
}

// view is one cached mount table.
type view struct {
	key    viewKey
	tab    *mountinfo.Table
	loaded time.Time
}

// New returns a Resolver that reads other processes through
// <root>/proc/PID: root is "/" in production, "/host" in a pod that has
// the node's /proc there, a fixture tree in tests. No file is read until
// the first call.
func New(root string, opts Options) *Resolver {
	if root == "" {
		root = "/"
	}
	r := &Resolver{
		root:       filepath.Clean(root),
		ttl:        opts.TTL,
		retryAfter: opts.RetryAfter,
		max:        opts.MaxNamespaces,
		now:        opts.Now,
		views:      make(map[viewKey]*view),
	}
	r.procDir = filepath.Join(r.root, "proc") + "/"
	r.selfRoot = opts.SelfRoot
	if r.selfRoot == "" {
		r.selfRoot = "/"
	}
	r.selfProc = filepath.Join(r.selfRoot, "proc") + "/"
	if r.ttl == 0 {
		r.ttl = DefaultTTL
	}
	if r.retryAfter == 0 {
		r.retryAfter = DefaultRetryAfter
	}
	if r.max <= 0 {
		r.max = DefaultMaxNamespaces
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// procPath returns <root>/proc/<pid>/<name>.
func (r *Resolver) procPath(pid int, name string) string {
	return filepath.Join(r.root, "proc", strconv.Itoa(pid), name)
}

// Invalidate drops the cached tables of the mount namespace whose
// /proc/PID/ns/mnt inode is nsIno (see Namespace), for callers that know
// its mounts changed: a container started, a volume was mounted.
func (r *Resolver) Invalidate(nsIno uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.views {
		if k.ns == nsIno {
			delete(r.views, k)
		}
	}
	if r.self != nil && r.self.key.ns == nsIno {
		r.self = nil
	}
}

// Flush drops every cached table.
func (r *Resolver) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.views)
	r.self = nil
}

// Namespace returns the inode number of the mount namespace of pid (the
// number in the "mnt:[N]" link /proc/PID/ns/mnt), the key Invalidate
// takes.
func (r *Resolver) Namespace(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, &Error{Op: "namespace", PID: pid, Err: fmt.Errorf("pid %d: %w", pid, ErrInvalid)}
	}
	k, err := keyOf(r.procDir, pid)
	if err != nil {
		return 0, &Error{Op: "namespace", PID: pid, Err: err}
	}
	return k.ns, nil
}

// fresh reports whether v may still be used: younger than the TTL and, if
// maxAge > 0, younger than maxAge.
func (r *Resolver) fresh(v *view, now time.Time, maxAge time.Duration) bool {
	if v == nil {
		return false
	}
	age := now.Sub(v.loaded)
	if r.ttl > 0 && age >= r.ttl {
		return false
	}
	return maxAge <= 0 || age < maxAge
}

// selfView returns the agent's own table, read again when older than
// maxAge (if maxAge > 0) or the TTL.
func (r *Resolver) selfView(maxAge time.Duration) (*view, error) {
	now := r.now()
	r.mu.Lock()
	v := r.self
	r.mu.Unlock()
	if r.fresh(v, now, maxAge) {
		return v, nil
	}
	k, err := keyOf(r.selfProc, 0)
	if err != nil {
		return nil, fmt.Errorf("agent's namespace: %w", err)
	}
	mounts, err := mountinfo.Read(r.selfRoot, 0)
	if err != nil {
		return nil, fmt.Errorf("agent's mount table: %w", err)
	}
	v = &view{key: k, tab: mountinfo.NewTable(mounts), loaded: now}
	r.mu.Lock()
	r.self = v
	r.mu.Unlock()
	return v, nil
}

// procView returns the table of pid's view, read again when older than
// maxAge (if maxAge > 0) or the TTL. A process in the agent's own view
// shares the agent's table.
func (r *Resolver) procView(pid int, maxAge time.Duration) (*view, error) {
	k, err := keyOf(r.procDir, pid)
	if err != nil {
		return nil, err
	}
	now := r.now()
	r.mu.Lock()
	v := r.views[k]
	if v == nil && r.self != nil && r.self.key == k {
		v = r.self
	}
	r.mu.Unlock()
	if r.fresh(v, now, maxAge) {
		return v, nil
	}
	// Two callers missing at once both read the file; the later store
	// wins. Reads are cheap enough (tens of microseconds) not to warrant
	// a single-flight group.
	mounts, err := mountinfo.Read(r.root, pid)
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	mounts = r.withRootMount(pid, k, mounts)
	v = &view{key: k, tab: mountinfo.NewTable(mounts), loaded: now}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.views[k]; !ok && len(r.views) >= r.max {
		r.evict(now)
	}
	r.views[k] = v
	return v, nil
}

// withRootMount completes the table of a process chrooted into a plain
// directory. mountinfo lists only the mounts at or below the process's
// root (proc(5)), so such a table has no mount at "/" and the files of
// the root's own filesystem could not be placed. The root directory is
// found in the agent's view (readlink of /proc/PID/root, on the device
// the key holds) and prepended as a mount of that subtree at "/". A table
// with a mount at "/" is returned unchanged, and so is one whose root the
// agent cannot place.
func (r *Resolver) withRootMount(pid int, k viewKey, mounts []mountinfo.Mount) []mountinfo.Mount {
	for i := range mounts {
		if mounts[i].MountPoint == "/" {
			return mounts
		}
	}
	target, err := os.Readlink(r.procPath(pid, "root"))
	if err != nil || !path.IsAbs(target) {
		return mounts
	}
	self, err := r.selfView(0)
	if err != nil {
		return mounts
	}
	major, minor, err := splitDev(k.rootDev)
	if err != nil {
		return mounts
	}
	target = path.Clean(target)
	i, ok := locate(self.tab, target, major, minor)
	if !ok {
		return mounts
	}
	m := self.tab.At(i)
	root := mountinfo.Mount{
		ID: -1, ParentID: -1, // matches no real mount
		Major: m.Major, Minor: m.Minor,
		Root:       fsPath(m, target),
		MountPoint: "/",
		Options:    m.Options, FSType: m.FSType, Source: m.Source, SuperOptions: m.SuperOptions,
	}
	return append([]mountinfo.Mount{root}, mounts...)
}

// evict makes room for one table: expired tables go, and if none had
// expired, the oldest. Called with mu held.
func (r *Resolver) evict(now time.Time) {
	var (
		oldest     viewKey
		oldestAt   time.Time
		haveOld    bool
		anyExpired bool
	)
	for k, v := range r.views {
		if r.ttl > 0 && now.Sub(v.loaded) >= r.ttl {
			delete(r.views, k)
			anyExpired = true
			continue
		}
		if !haveOld || v.loaded.Before(oldestAt) {
			oldest, oldestAt, haveOld = k, v.loaded, true
		}
	}
	if !anyExpired && haveOld {
		delete(r.views, oldest)
	}
}

// ContainerPath returns the path under which process pid sees the file
// that the agent sees at hostPath on device dev (st_dev, as stat(2) and
// fstat(2) report it). ok is false when the process cannot see the file;
// err is set only when a mount table could not be read (the process is
// gone: errors.Is(err, fs.ErrNotExist)).
//
// hostPath is a canonical path: the readlink of an event descriptor, or
// <root>/proc/N/root/... or /proc/N/root/..., a path in process N's view
// (the form HostPath returns for files the agent cannot otherwise reach).
// It is read, in turn, as a path in the agent's own view, in the node's
// view (PID 1 under root), and in the process's own view; the first
// reading that the mount tables can place wins. Without the file's inode
// that first reading cannot be checked; see ContainerPathOf and the
// package documentation for when it matters.
func (r *Resolver) ContainerPath(pid int, hostPath string, dev uint64) (string, bool, error) {
	return r.containerPath(pid, hostPath, dev, 0, false)
}

// ContainerPathOf is ContainerPath for a file known by device and inode
// (fstat(2) of the event descriptor). Each reading of hostPath is checked
// by looking its answer up inside the process's root (openat2(2) with
// RESOLVE_IN_ROOT and RESOLVE_NO_SYMLINKS, so a symlink planted in the
// container cannot vouch for a wrong name) and comparing device and
// inode; the first answer that is the same file wins. This settles the
// case where a readlink printed a path from another namespace that also
// means something in the agent's, at the cost of an open and an fstat per
// reading tried.
func (r *Resolver) ContainerPathOf(pid int, hostPath string, dev, ino uint64) (string, bool, error) {
	return r.containerPath(pid, hostPath, dev, ino, true)
}

func (r *Resolver) containerPath(pid int, hostPath string, dev, ino uint64, verify bool) (string, bool, error) {
	fail := func(err error) (string, bool, error) {
		return "", false, &Error{Op: "container path", PID: pid, Path: hostPath, Err: err}
	}
	if pid <= 0 {
		return fail(fmt.Errorf("pid %d: %w", pid, ErrInvalid))
	}
	if !path.IsAbs(hostPath) {
		return fail(fmt.Errorf("path not absolute: %w", ErrInvalid))
	}
	major, minor, err := splitDev(dev)
	if err != nil {
		return fail(err)
	}
	srcPID, p := r.splitProcRoot(hostPath)
	accept := func(s string) bool { return !verify || r.sameFile(pid, s, dev, ino) }
	maxAge := time.Duration(0)
	for attempt := 0; ; attempt++ {
		// The agent's table first: a process in the agent's own view then
		// shares it instead of reading its own copy.
		var src *view
		switch srcPID {
		case 0:
			src, err = r.selfView(maxAge)
		case pid:
		default:
			src, err = r.procView(srcPID, maxAge)
		}
		if err != nil {
			return fail(fmt.Errorf("source view: %w", err))
		}
		dst, err := r.procView(pid, maxAge)
		if err != nil {
			return fail(err)
		}
		if src == nil {
			src = dst
		}
		oldest := src.loaded
		if dst.loaded.Before(oldest) {
			oldest = dst.loaded
		}
		// reading reads p in view v (of process viewPID, 0 for the
		// agent). explained is true when the view has the device at p
		// and, unless verifying, a file of that device exists there: the
		// path then names a file of that view, and the process's own
		// reading of it is not tried.
		reading := func(v *view, viewPID int) (s string, ok, explained bool) {
			i, found := locate(v.tab, p, major, minor)
			if !found {
				return "", false, false
			}
			m := v.tab.At(i)
			if s, ok := place(dst.tab, fsPath(m, p), m.Major, m.Minor); ok && accept(s) {
				return s, true, true
			}
			return "", false, !verify && r.existsIn(viewPID, p, dev)
		}
		s, ok, explained := reading(src, srcPID)
		if ok {
			return s, true, nil
		}
		if srcPID == 0 {
			// The node's view, through PID 1 under root: an agent in a pod
			// reads host paths of mounts that did not propagate into its
			// own namespace (see the package documentation). An agent on
			// the host shares PID 1's view, and this is skipped.
			if node, err := r.procView(1, maxAge); err == nil && node.key != src.key && node != dst {
				if node.loaded.Before(oldest) {
					oldest = node.loaded
				}
				s, ok, nodeExplained := reading(node, 1)
				if ok {
					return s, true, nil
				}
				explained = explained || nodeExplained
			}
		}
		if !explained {
			if s, ok := foreign(dst.tab, p, major, minor); ok && accept(s) {
				return s, true, nil
			}
		}
		if attempt > 0 || r.retryAfter < 0 || r.now().Sub(oldest) < r.retryAfter {
			return "", false, nil
		}
		maxAge = r.retryAfter
	}
}

// splitProcRoot recognises /proc/N/root/rest and <root>/proc/N/root/rest
// (also with "self" for N, the agent) and returns N and /rest; for any
// other path it returns 0 and the cleaned path.
func (r *Resolver) splitProcRoot(p string) (int, string) {
	p = path.Clean(p)
	for i, procDir := range [2]string{"/proc/", r.procDir} {
		if i == 1 && procDir == "/proc/" {
			break
		}
		rest, ok := strings.CutPrefix(p, procDir)
		if !ok {
			continue
		}
		id, rest, _ := strings.Cut(rest, "/")
		sub, ok := strings.CutPrefix(rest, "root")
		if !ok || sub != "" && sub[0] != '/' {
			continue
		}
		if sub == "" {
			sub = "/"
		}
		if id == "self" && i == 0 {
			return 0, sub
		}
		if n, err := strconv.Atoi(id); err == nil && n > 0 && id[0] != '+' {
			return n, sub
		}
	}
	return 0, p
}

// File is a file found in a process's view by HostPath.
type File struct {
	// Path is a path the agent can open. It is in the agent's own mount
	// namespace when some mount there shows the file (checked by device
	// and inode); otherwise it is <root>/proc/PID/root followed by
	// ContainerPath, which works only while the process lives and keeps
	// its root.
	Path string
	// ViaProcRoot is true when Path goes through /proc/PID/root.
	ViaProcRoot bool
	// ContainerPath is the path as given with every symbolic link
	// resolved inside the process's root: the canonical name under which
	// the process sees the file, the one ContainerPath returns for it.
	ContainerPath string
	// Dev is the file's st_dev.
	Dev uint64
	// Ino is the file's inode number.
	Ino uint64
	// Mode is the file's type and permission bits.
	Mode fs.FileMode
}
