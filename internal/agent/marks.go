package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/storage"
)

// Storage classes whose files policies without paths can cover. Pseudo
// filesystems (proc, sysfs, cgroup...) are never marked.
var markableClasses = []storage.Class{storage.ClassLocal, storage.ClassNetwork, storage.ClassCloud, storage.ClassSharedFolder, storage.ClassRemovable, storage.ClassOverlay}

// wantedMarks maps the mount point of every filesystem to mark to the
// mask. A filesystem mark (FAN_MARK_FILESYSTEM) covers every mount of the
// superblock, so bind mounts of a protected tree are seen too; one mount
// point per superblock is enough.
//
// The filesystems are those holding the policies' roots (the literal
// prefixes of their path globs) and those mounted at or below a root where
// a glob could match: /var/lib/kubelet/pods/*/volumes/kubernetes.io~secret/**
// has the root /var/lib/kubelet/pods, whose filesystem holds none of the
// secrets; each secret volume is a tmpfs of its own, mounted at
// /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~secret/<name>.
func (a *Agent) wantedMarks(st *policyState) map[string]uint64 {
	want := map[string]uint64{}
	if st.mask == 0 {
		return want
	}
	mounts := a.mounts.Load()
	seen := map[[2]uint32]bool{}
	add := func(mp string, major, minor uint32) {
		if !a.markAllowed(mp) {
			return
		}
		key := [2]uint32{major, minor}
		if seen[key] {
			return
		}
		seen[key] = true
		want[mp] = st.mask
	}
	root := a.cfg.HostRoot
	for _, r := range st.roots {
		p := nearestExisting(root, r)
		m, info := mounts.Lookup(hostPath(root, p))
		if m.MountPoint == "" || info.Class == storage.ClassPseudo {
			continue
		}
		add(m.MountPoint, m.Major, m.Minor)
	}
	if len(st.roots) > 0 && !st.anywhere {
		t := mounts.Table()
		for i := 0; i < t.Len(); i++ {
			if t.Hidden(i) {
				continue
			}
			m := t.At(i)
			p, ok := hostView(root, filepath.Clean(m.MountPoint))
			if !ok || !underAny(st.roots, p) || !st.m.PathsUnder(p) {
				continue
			}
			if info := mounts.At(i); info.Class == "" || info.Class == storage.ClassPseudo {
				continue
			}
			add(m.MountPoint, m.Major, m.Minor)
		}
	}
	if st.anywhere {
		t := mounts.Table()
		for i := 0; i < t.Len(); i++ {
			if t.Hidden(i) {
				continue
			}
			m := t.At(i)
			_, info := mounts.Lookup(m.MountPoint)
			if slices.Contains(markableClasses, info.Class) {
				add(m.MountPoint, m.Major, m.Minor)
			}
		}
	}
	return want
}

// markAllowed applies Config.MarkOnly.
func (a *Agent) markAllowed(mountPoint string) bool {
	if len(a.cfg.MarkOnly) == 0 {
		return true
	}
	for _, m := range a.cfg.MarkOnly {
		m = filepath.Clean(m)
		if mountPoint == m || strings.HasPrefix(mountPoint, m+"/") || m == "/" {
			return true
		}
	}
	return false
}

// underAny reports whether p is one of roots or below one.
func underAny(roots []string, p string) bool {
	for _, r := range roots {
		if r == "/" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// hostView is the inverse of hostPath: the host path of p, a path as the
// agent sees it; false when p is outside root (a mount of the agent's own
// container).
func hostView(root, p string) (string, bool) {
	if root == "/" || root == "" {
		return p, true
	}
	root = filepath.Clean(root)
	switch {
	case p == root:
		return "/", true
	case strings.HasPrefix(p, root+"/"):
		return p[len(root):], true
	}
	return "", false
}

// hostPath is p as the agent sees it when the host's / is at root.
func hostPath(root, p string) string {
	if root == "/" || root == "" {
		return p
	}
	return filepath.Join(root, p)
}

// applyMarks marks what st needs, or what the policy now in force needs if
// a reload replaced st meanwhile: that reload's own mark update may have
// run first, and must not be undone.
func (a *Agent) applyMarks(st *policyState) error {
	a.marksMu.Lock()
	defer a.marksMu.Unlock()
	if cur := a.state.Load(); cur.gen > st.gen {
		st = cur
	}
	return a.applyMarksLocked(st)
}

// remarkAfterReload updates the marks for st, just swapped in by Reload,
// and flushes the ignore marks, which cache verdicts of the old policy.
// Before Run has opened fanotify there is nothing to update.
func (a *Agent) remarkAfterReload(st *policyState) {
	a.marksMu.Lock()
	defer a.marksMu.Unlock()
	if a.fan == nil {
		return
	}
	if err := a.applyMarksLocked(st); err != nil {
		a.log.Error("updating marks after reload", "error", err)
	}
	if err := a.fan.Flush(0); err != nil {
		a.log.Warn("flushing ignore marks", "error", err)
	}
}

// applyMarksLocked marks what st needs and removes marks it no longer
// needs. Marking fails only if no filesystem could be marked at all. Call
// it with marksMu held.
func (a *Agent) applyMarksLocked(st *policyState) error {
	want := a.wantedMarks(st)
	for mp, mask := range a.marked {
		if want[mp] == mask {
			continue
		}
		if err := a.fan.Unmark(unix.FAN_MARK_FILESYSTEM, mask, mp); err != nil {
			a.log.Warn("removing a filesystem mark", "mountPoint", mp, "error", err)
		}
		delete(a.marked, mp)
	}
	var errs []string
	for mp, mask := range want {
		if _, ok := a.marked[mp]; ok {
			continue
		}
		if err := a.fan.MarkFilesystem(mp, mask); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", mp, err))
			continue
		}
		a.marked[mp] = mask
	}
	a.publishMarked()
	a.watchNamesOn(want)
	if len(errs) > 0 {
		a.log.Error("some filesystems could not be marked; their files are not protected", "errors", errs)
		if len(a.marked) == 0 && len(want) > 0 {
			return fmt.Errorf("mark filesystems: %s", strings.Join(errs, "; "))
		}
	}
	return nil
}

func (a *Agent) markedList() []string {
	if l := a.markedSnap.Load(); l != nil {
		return *l
	}
	return []string{}
}

// publishMarked takes a snapshot of the marked mount points for Status,
// which must not wait for a reload or a mark change. Call it with marksMu
// held.
func (a *Agent) publishMarked() {
	out := make([]string, 0, len(a.marked))
	for mp := range a.marked {
		out = append(out, mp)
	}
	slices.Sort(out)
	a.markedSnap.Store(&out)
}

// openMountTable opens the mount table for watchMounts: open before the
// first marking, it reports every change made after that.
func (a *Agent) openMountTable() (int, error) {
	f, err := unix.Open(filepath.Join(a.cfg.HostRoot, "proc/self/mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open the mount table: %w", err)
	}
	return f, nil
}

// watchMounts re-reads the mount table when it changes (the kernel wakes
// pollers of /proc/self/mountinfo with POLLPRI) and marks filesystems
// mounted where policies protect paths, so a new NFS mount or container
// volume is protected when it appears, even while a reload runs. f is
// the table opened by openMountTable; the caller closes it.
func (a *Agent) watchMounts(ctx context.Context, f int) {
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(f), Events: unix.POLLPRI}}
		// Poll in slices of a second so that ctx is noticed.
		n, err := unix.Poll(fds, 1000)
		if err != nil && err != unix.EINTR {
			a.log.Warn("polling the mount table", "error", err)
			time.Sleep(time.Second)
			continue
		}
		if n == 0 || fds[0].Revents&(unix.POLLPRI|unix.POLLERR) == 0 {
			continue
		}
		// Reading the file re-arms the notification.
		buf := make([]byte, 64<<10)
		unix.Seek(f, 0, 0)
		for {
			if n, _ := unix.Read(f, buf); n <= 0 {
				break
			}
		}
		if err := a.refreshMounts(); err != nil {
			a.log.Warn("re-reading the mount table", "error", err)
			continue
		}
		a.stats.mountChanges.Add(1)
		// marksMu, not reloadMu: a reload that is slow (a large re-index,
		// a policy source that does not answer) must not leave new mounts
		// unmarked. The policy is read under the lock, so a reload that
		// swaps one in meanwhile marks for it after this, or before with
		// this seeing it.
		a.marksMu.Lock()
		if err := a.applyMarksLocked(a.state.Load()); err != nil {
			a.log.Warn("marking after a mount change", "error", err)
		}
		a.marksMu.Unlock()
	}
}

// watchNamesOn makes the name watcher watch every marked filesystem,
// through a mount of its whole filesystem (root "/"), which the watcher
// needs to name directories.
func (a *Agent) watchNamesOn(want map[string]uint64) {
	if a.names == nil {
		return
	}
	for mp := range a.watched {
		if _, ok := want[mp]; !ok {
			_ = a.names.Unwatch(mp)
			delete(a.watched, mp)
		}
	}
	mounts := a.mounts.Load()
	for mp := range want {
		if a.watched[mp] {
			continue
		}
		if m, _ := mounts.Lookup(mp); m.Root != "/" {
			a.log.Warn("not watching name changes on a bind mount of part of a filesystem", "mountPoint", mp)
			continue
		}
		if err := a.names.WatchFilesystem(mp); err != nil {
			a.log.Warn("watching name changes", "mountPoint", mp, "error", err)
			continue
		}
		a.watched[mp] = true
	}
}
