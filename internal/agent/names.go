package agent

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/drmfilter/drmfilter/internal/fanotify"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// watchNames keeps the identity index and the ignore marks current as
// names change on the marked filesystems. fanotify has no permission event
// for link or rename, so a second, notification-class group reports them:
//
//   - a name created, hard-linked or renamed into a protected place: the
//     file is indexed, and any ignore mark on it (cached while it was not
//     covered) is removed, so its next open is decided again;
//   - a directory renamed: every ignore mark is dropped, since files below
//     it may now be covered;
//   - an indexed file renamed out of a protected place (to anywhere no
//     policy covers), linked to such a name, or left with other names when
//     one is removed: it is kept by identity, with the handle the event
//     gives, decided as the protected name it had, for as long as it
//     exists: walks carry it over (identityIndex.keepByIdentity, rebuild);
//   - the last name of an indexed file deleted: the entry is forgotten;
//   - a queue overflow: events were lost, so the index is rebuilt and all
//     ignore marks dropped. The rebuild keeps the files kept by identity
//     and, unverified, indexed files whose names no longer lead to them,
//     since the lost events may have been their renames.
//
// The kernel reports these after the fact; between the rename and the
// moment it is read, an open may still be answered by a stale ignore mark.
func (a *Agent) watchNames(ctx context.Context, w *fanotify.Watcher) {
	a.index.attach(w, a.log)
	evs := make([]fanotify.NameEvent, 0, 256)
	for {
		batch, err := w.Read(ctx, evs[:0])
		for i := range batch {
			a.nameChanged(&batch[i])
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, fanotify.ErrClosed) {
				a.log.Warn("name-change watcher stopped; renames into protected places are seen only on reload", "error", err)
			}
			return
		}
	}
}

func (a *Agent) nameChanged(e *fanotify.NameEvent) {
	st := a.state.Load()
	if e.IsOverflow() {
		a.stats.overflows.Add(1)
		a.index.rebuild(st, a.mounts.Load(), a.penv)
		a.flushIgnoreMarks()
		return
	}
	// A file the event identifies (its child), even when its directory
	// could not be named.
	file := e.Mask&fanotify.OnDir == 0 && e.Ino != 0
	if file {
		a.index.sawChild(e.Dev, e.Ino, e.Child)
	}
	path := ""
	if e.Err == nil {
		path = e.Path()
	}
	switch {
	case path != "" && e.Mask&(fanotify.Create|fanotify.MovedTo) != 0 && e.Mask&fanotify.OnDir != 0:
		if e.Mask&fanotify.MovedTo != 0 {
			a.flushIgnoreMarks()
		}
	case file && path != "" && e.Mask&(fanotify.Create|fanotify.MovedTo) != 0 && a.covers(st, path):
		a.index.learn(e.Dev, e.Ino, path)
		if a.cfg.IgnoreMarksEnabled() {
			// Usually there is no mark to remove: ENOENT is expected.
			_ = a.fan.Unignore(path, st.mask)
		}
	case file:
		// Moved or linked to a name no policy covers (or one that could
		// not be named), moved away, or a name of it removed while it
		// lives on: if it is protected, it stays so by identity.
		if a.index.keepByIdentity(e.Dev, e.Ino, e.Child) {
			a.log.Warn("too many files renamed out of protected places to keep them all by identity; more are protected only until the next walk of the policies' roots",
				"limit", a.index.outCap)
		}
	case path != "" && e.Mask&fanotify.Delete != 0 && e.Ino == 0:
		a.index.forgetPath(path)
	}
}

// covers reports whether some policy covers path, for any process.
func (a *Agent) covers(st *policyState, path string) bool {
	_, info := a.mounts.Load().Lookup(path)
	in := policy.Input{Op: policy.OpOpen, Path: filepath.Clean(path), FSType: info.FSType, StorageClass: string(info.Class), Env: a.penv}
	return st.m.Decide(&in).Covered
}

func (a *Agent) flushIgnoreMarks() {
	if a.fan == nil || !a.cfg.IgnoreMarksEnabled() {
		return
	}
	if err := a.fan.Flush(0); err != nil {
		a.log.Warn("flushing ignore marks", "error", err)
	}
}
