package agent

import (
	"errors"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/fanotify"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// maxIndexed bounds the identity index (about 25 bytes an entry once
// frozen; see BenchmarkIdentityIndexMemory).
const maxIndexed = 1 << 21

type fileKey struct{ dev, ino uint64 }

// identityIndex maps the device and inode of protected files to a
// protected path, so a file reached by another name (a hard link, a bind
// mount, a path in another mount namespace, open_by_handle_at) is decided
// as the protected file it is. It is filled by walking the policies' roots
// at start and reload, and learns every covered file the agent decides.
//
// It has two parts: the files found by the walk, frozen into a compact
// table (frozenIndex), and the files learned since, in maps (indexTables).
// An inode is in at most one of them with its current name: learning an
// inode the frozen part knows moves it to the maps. The maps cost about six
// times as much per file, so they are bounded by learnedCap; when they
// fill up, onFull asks the agent for a new walk, which freezes what was
// learned (files created in protected places are on disk where the walk
// finds them), and until then further new files are decided by path only.
//
// A third part, out, holds the protected files that no name in a protected
// place leads to any more: renamed out of it, or hard-linked elsewhere and
// then unlinked there. The README's rule is that such a file stays
// protected; a walk cannot find it, so out is kept apart from both other
// parts and carried over by every walk (see rebuild) for as long as its
// inode lives, each file decided as the protected name it had. Its entries
// are found by identity only, never by name: a new file at the old name is
// another file.
type identityIndex struct {
	mu         sync.RWMutex
	frozen     *frozenIndex
	t          *indexTables
	limit      int
	learnedCap int
	// onFull is called (without the lock held) once the maps reach
	// learnedCap, once per walk.
	onFull   func()
	askedFor bool
	// missed: a file was left out while the walk asked for was pending or
	// running, which may have begun before the file existed; the walk
	// asks for another when it ends.
	missed bool
	// walkMu makes walks take turns (a reload, a queue overflow of the
	// name watcher and a full index may each ask for one).
	walkMu sync.Mutex

	// out holds the files kept by identity alone, bounded by outCap.
	out    map[fileKey]outFile
	outCap int
	// outFull is set when keepByIdentity found out full, so that it is
	// reported once per walk.
	outFull bool
	// names is the name watcher, which finds a file by its handle and
	// says which filesystems report name changes; nil without one. Set
	// by attach, under mu.
	names nameSource
	log   *slog.Logger
	// walks counts the walks that have finished.
	walks atomic.Uint64
	// changes counts changes to the maps and out, under mu: a walk that
	// sees none while it ran has nothing to merge (mergeLate).
	changes uint64
}

// outFile is a protected file kept by identity alone.
type outFile struct {
	// path is the protected name it is decided as: the one it was
	// indexed under when it lost it.
	path string
	// handle is its file handle, from the name event that reported the
	// change, by which a walk checks that it still exists. The zero
	// Handle when no event named it (its change was among the events a
	// name-watch overflow lost): it is then kept unverified, since a
	// file that was moved and a file that was deleted cannot be told
	// apart without one.
	handle fanotify.Handle
}

// outCap bounds the files kept by identity alone (about 210 heap bytes each
// with a 12-byte handle; see BenchmarkIdentityIndexMemoryKept): 65,536 of
// them take about 14 MB.
const outCap = 1 << 16

// indexTables hold the files learned since the last walk.
// Directories are interned and base names live back to back in one byte
// arena; the reverse direction (path to inode, to forget deleted files) is
// a map from a 64-bit hash of the path. About 145 bytes a file: fine for
// the files created while the agent runs, not for a million.
type indexTables struct {
	seed   maphash.Seed
	dirs   []string          // interned directory paths
	dirIDs map[string]uint32 // dirs[i] -> i
	names  []byte            // base names, back to back
	waste  int               // bytes of names no entry uses any more
	files  map[fileKey]nameRef
	// byPath finds the entry of a path: pathHash -> key. Two paths with the
	// same hash (rare) are kept in collide by full path instead.
	byPath  map[uint64]fileKey
	collide map[string]fileKey
}

// nameRef names an indexed file: its directory and its base name in the
// names arena.
type nameRef struct {
	dir      uint32
	off, len uint32
}

func newIndexTables() *indexTables {
	return &indexTables{seed: maphash.MakeSeed(), dirIDs: map[string]uint32{}, files: map[fileKey]nameRef{},
		byPath: map[uint64]fileKey{}, collide: map[string]fileKey{}}
}

// learnedCap bounds the files learned between walks (about 145 bytes each).
const learnedCap = 1 << 18

func newIdentityIndex(limit int) *identityIndex {
	return &identityIndex{t: newIndexTables(), limit: limit, learnedCap: min(limit, learnedCap),
		out: map[fileKey]outFile{}, outCap: min(limit, outCap)}
}

// nameSource is what walks need of the name watcher (*fanotify.Watcher).
type nameSource interface {
	// StatHandle finds a file by its handle; ESTALE once it is gone.
	StatHandle(fanotify.Handle) (fanotify.FileStat, error)
	// WatchesDevice reports whether name changes on the filesystem of
	// device dev are reported.
	WatchesDevice(dev uint64) bool
}

// attach gives the index the name watcher, used by walks to check that
// files kept by identity still exist, and a logger for what walks cannot
// keep.
func (x *identityIndex) attach(names nameSource, log *slog.Logger) {
	x.mu.Lock()
	x.names, x.log = names, log
	x.mu.Unlock()
}

// lookup returns the protected path indexed for the inode. Only a hit
// builds a string: a miss, the common case, allocates nothing.
func (x *identityIndex) lookup(dev, ino uint64) (string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r, ok := x.t.files[fileKey{dev, ino}]; ok {
		return x.t.path(r), true
	}
	if i, ok := x.frozen.find(dev, ino); ok {
		return x.frozen.path(i), true
	}
	if o, ok := x.out[fileKey{dev, ino}]; ok {
		return o.path, true
	}
	return "", false
}

func (x *identityIndex) learn(dev, ino uint64, path string) {
	k := fileKey{dev, ino}
	dir, base := splitPath(path)
	x.mu.RLock()
	r, inMaps := x.t.files[k]
	same := inMaps && x.t.is(r, dir, base)
	if !inMaps {
		if o, ok := x.out[k]; ok {
			// Kept by identity and decided as path: nothing changes.
			same = o.path == path
		} else {
			i, ok := x.frozen.find(dev, ino)
			same = ok && x.frozen.is(i, dir, base)
		}
	}
	x.mu.RUnlock()
	if same {
		return
	}
	x.mu.Lock()
	_, inMaps = x.t.files[k]
	fi, inFrozen := x.frozen.find(dev, ino)
	_, inOut := x.out[k]
	if inOut {
		// Back under a protected name: indexed by it again.
		delete(x.out, k)
	}
	if !inMaps && !inFrozen && !inOut && (x.lenLocked() >= x.limit || len(x.t.files) >= x.learnedCap) {
		ask := !x.askedFor && len(x.t.files) >= x.learnedCap && x.onFull != nil
		if !ask && x.askedFor && len(x.t.files) >= x.learnedCap {
			x.missed = true
		}
		x.askedFor = x.askedFor || ask
		x.mu.Unlock()
		if ask {
			x.onFull()
		}
		return
	}
	x.changes++
	if inFrozen {
		x.frozen.kill(fi) // known under another name: moves to the maps
	}
	if j, ok := x.frozen.findPath(dir, base); ok {
		x.frozen.kill(j) // the name now names another inode
	}
	x.t.put(k, dir, base)
	x.mu.Unlock()
}

// forgetPath drops the file last indexed under path (its last name was
// deleted, so its inode number may be reused by an unrelated file).
func (x *identityIndex) forgetPath(path string) {
	dir, base := splitPath(path)
	x.mu.Lock()
	x.changes++
	if i, ok := x.frozen.findPath(dir, base); ok {
		x.frozen.kill(i)
	}
	x.t.forget(dir, base)
	x.mu.Unlock()
}

func (x *identityIndex) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.lenLocked()
}

func (x *identityIndex) lenLocked() int { return x.frozenLen() + len(x.t.files) + len(x.out) }

// keepByIdentity is told that the indexed file (dev, ino), whose handle is
// h, may have lost the name it is indexed under: it was renamed away from
// it, or linked to a name no policy protects, or one of its names was
// removed while it still exists. From now on it is kept by identity alone,
// decided as the name it had, until a walk finds it under a protected name
// again or finds it gone. A file the index does not know is left alone.
//
// It returns true the first time since the last walk that a file could not
// be kept apart because out is full (then it stays indexed under its name,
// as before: protected until the next walk, or until the name is reused).
func (x *identityIndex) keepByIdentity(dev, ino uint64, h fanotify.Handle) (full bool) {
	k := fileKey{dev, ino}
	// Most name events are about files the index does not know: find out
	// under the read lock, so that they do not stall lookups.
	x.mu.RLock()
	o, isOut := x.out[k]
	_, known := x.t.files[k]
	if !known && !isOut {
		_, known = x.frozen.find(dev, ino)
	}
	x.mu.RUnlock()
	if !known && (!isOut || o.handle.Valid() || !h.Valid()) {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if o, ok := x.out[k]; ok {
		if !o.handle.Valid() && h.Valid() {
			o.handle = h
			x.out[k] = o
			x.changes++
		}
		return false
	}
	var path string
	r, inMaps := x.t.files[k]
	fi, inFrozen := x.frozen.find(dev, ino)
	switch {
	case inMaps:
		path = x.t.path(r)
	case inFrozen:
		path = x.frozen.path(fi)
	default:
		return false
	}
	if len(x.out) >= x.outCap {
		full = !x.outFull
		x.outFull = true
		return full
	}
	if inMaps {
		x.t.remove(k)
	}
	for inFrozen {
		// Every entry of it: a walk adds one per name.
		x.frozen.kill(fi)
		fi, inFrozen = x.frozen.find(dev, ino)
	}
	x.out[k] = outFile{path: path, handle: h}
	x.changes++
	return false
}

// sawChild is told of every file a name event identified with its handle h.
// A file kept by identity with the same inode number but another handle is
// gone (two live files never share an inode number, and the handle carries
// the generation): it is dropped. One kept without a handle takes h, so
// that walks can check it from now on.
func (x *identityIndex) sawChild(dev, ino uint64, h fanotify.Handle) {
	if !h.Valid() {
		return
	}
	k := fileKey{dev, ino}
	x.mu.RLock()
	o, ok := x.out[k]
	x.mu.RUnlock()
	if !ok || o.handle == h {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	switch o, ok := x.out[k]; {
	case !ok || o.handle == h:
	case o.handle.Valid():
		delete(x.out, k)
		x.changes++
	default:
		o.handle = h
		x.out[k] = o
		x.changes++
	}
}

func (x *identityIndex) frozenLen() int {
	if x.frozen == nil {
		return 0
	}
	return x.frozen.alive
}

// splitPath splits an absolute path into its directory and base name
// ("/a/b" -> "/a", "b"; "/b" -> "/", "b").
func splitPath(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

func (t *indexTables) path(r nameRef) string {
	return joinPath(t.dirs[r.dir], t.names[r.off:r.off+r.len])
}

// is reports whether r names dir/base.
func (t *indexTables) is(r nameRef, dir, base string) bool {
	return t.dirs[r.dir] == dir && string(t.names[r.off:r.off+r.len]) == base
}

func (t *indexTables) hash(dir uint32, base string) uint64 {
	return maphash.String(t.seed, base) ^ (uint64(dir)+1)*0x9e3779b97f4a7c15
}

// put indexes k under dir/base, replacing what k was indexed under.
func (t *indexTables) put(k fileKey, dir, base string) {
	if old, ok := t.files[k]; ok {
		t.unlink(k, old)
	}
	id, ok := t.dirIDs[dir]
	if !ok {
		id = uint32(len(t.dirs))
		t.dirs = append(t.dirs, dir)
		t.dirIDs[dir] = id
	}
	r := nameRef{dir: id, off: uint32(len(t.names)), len: uint32(len(base))}
	t.names = append(t.names, base...)
	// A path indexed for another inode (a file replaced by another under
	// the same name) now names k.
	h := t.hash(id, base)
	if other, ok := t.byPath[h]; ok && other != k {
		or, exists := t.files[other]
		switch {
		case exists && t.is(or, dir, base):
			delete(t.files, other)
			t.waste += int(or.len)
		case exists: // another path with the same hash
			full := dir + "/" + base
			if prev, ok := t.collide[full]; ok && prev != k {
				if pr, ok := t.files[prev]; ok && t.is(pr, dir, base) {
					delete(t.files, prev)
					t.waste += int(pr.len)
				}
			}
			t.collide[full] = k
			t.files[k] = r
			t.compact()
			return
		}
	}
	t.byPath[h] = k
	t.files[k] = r
	t.compact()
}

// unlink removes the path mapping of k's entry r (not the entry itself).
func (t *indexTables) unlink(k fileKey, r nameRef) {
	base := string(t.names[r.off : r.off+r.len])
	if h := t.hash(r.dir, base); t.byPath[h] == k {
		delete(t.byPath, h)
	} else {
		delete(t.collide, t.dirs[r.dir]+"/"+base)
	}
	t.waste += int(r.len)
}

// remove drops k's entry.
func (t *indexTables) remove(k fileKey) {
	if r, ok := t.files[k]; ok {
		t.unlink(k, r)
		delete(t.files, k)
		t.compact()
	}
}

func (t *indexTables) forget(dir, base string) {
	id, ok := t.dirIDs[dir]
	if !ok {
		return
	}
	k, ok := t.byPath[t.hash(id, base)]
	if !ok || !t.is(t.files[k], dir, base) {
		if k, ok = t.collide[dir+"/"+base]; !ok {
			return
		}
	}
	r, ok := t.files[k]
	if !ok || !t.is(r, dir, base) {
		return
	}
	t.unlink(k, r)
	delete(t.files, k)
	t.compact()
}

// compact rewrites the names arena when most of it is names no entry uses
// (files renamed or deleted), so that churn cannot grow it without bound.
func (t *indexTables) compact() {
	if t.waste < 1<<16 || t.waste < len(t.names)/2 {
		return
	}
	names := make([]byte, 0, len(t.names)-t.waste)
	for k, r := range t.files {
		off := uint32(len(names))
		names = append(names, t.names[r.off:r.off+r.len]...)
		t.files[k] = nameRef{dir: r.dir, off: off, len: r.len}
	}
	t.names, t.waste = names, 0
}

// rebuild walks every root of st and indexes the files st covers. Files
// appear in the index before the policy that covers them is swapped in.
// What the walk cannot find is carried over from the index it replaces
// (carryOver): the files kept by identity that still exist, and files
// indexed under names the walk did not see.
func (x *identityIndex) rebuild(st *policyState, mounts *storage.Mounts, env policy.Env) {
	// The walk makes a few hundred bytes of garbage per file (paths, file
	// info) while the index grows: with the default GOGC the heap would
	// reach twice the live heap before a collection. Collect more often
	// during the walk (the agent owns its process), and give the previous
	// index back to the system once it is replaced.
	x.walkMu.Lock()
	defer x.walkMu.Unlock()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	defer debug.FreeOSMemory()
	b := newFrozenBuilder()
	for _, root := range st.roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable: skip, keep walking
			}
			if int(b.n) >= x.limit {
				return fs.SkipAll
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			_, info := mounts.Lookup(p)
			in := policy.Input{Op: policy.OpOpen, Path: p, FSType: info.FSType, StorageClass: string(info.Class), Env: env}
			if !st.m.Decide(&in).Covered {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
				dir, base := splitPath(p)
				b.add(uint64(sys.Dev), sys.Ino, dir, base)
			}
			return nil
		})
	}
	f := b.build()
	covered := func(p string) bool {
		_, info := mounts.Lookup(p)
		in := policy.Input{Op: policy.OpOpen, Path: p, FSType: info.FSType, StorageClass: string(info.Class), Env: env}
		return st.m.Decide(&in).Covered
	}
	c := x.carryOver(f, int(b.n), covered)
	x.mu.Lock()
	c.mergeLate(x, f, covered)
	x.frozen, x.t, x.out, x.askedFor, x.outFull = f, c.t, c.out, false, false
	again := x.missed && x.onFull != nil
	x.missed = false
	x.askedFor = again
	log := x.log
	x.mu.Unlock()
	if again {
		x.onFull() // files left out during this walk may be newer than it
	}
	x.walks.Add(1)
	if c.full > 0 && log != nil {
		log.Warn("identity index full: files renamed out of protected places are no longer all kept; those left out are decided by their current names",
			"notKept", c.full, "kept", len(c.out), "limit", x.outCap)
	}
}

// carried is a file of the old index that a walk did not find, as it was
// when carryOver looked.
type carried struct {
	path string
	// from is where it was: in out (with handle), in the learned maps, or
	// in the frozen table.
	from   carriedFrom
	handle fanotify.Handle
}

type carriedFrom uint8

const (
	fromOut carriedFrom = iota
	fromMaps
	fromFrozen
)

// carry is what a walk keeps of the index it replaces, besides what it
// found.
type carry struct {
	t   *indexTables
	out map[fileKey]outFile
	// seen holds the files carryOver looked at that the walk did not
	// find, and found the files of out that it did find, so that
	// mergeLate can tell what changed while the lock was not held.
	seen  map[fileKey]carried
	found map[fileKey]bool
	full  int    // files that did not fit
	gen   uint64 // identityIndex.changes when carryOver began
}

// carryOver decides what becomes of every file of the current index that
// the new walk (f, n files) did not find and whose indexed name the new
// policy still covers (a file whose name it does not cover is not
// protected any more):
//
//   - a file kept by identity stays kept if its handle still finds it;
//     ESTALE means it is gone. Without a handle it stays, unverified.
//   - a file indexed under a name that still leads to it was put there
//     after the walk had passed by (or the walk could not read its
//     directory): it stays learned under that name.
//   - a file indexed under a name that no longer leads to it was moved or
//     deleted, and the name watcher has not said which: its events are not
//     read yet, or were lost in a queue overflow (an unprivileged user can
//     cause one). A moved file must stay protected, so with a name watcher
//     it is kept by identity, unverified, until a later event gives its
//     handle (sawChild, keepByIdentity). On a filesystem whose name
//     changes are not watched nothing ever reports renames (nor deletes),
//     and it is let go, as before.
//
// It reads the index under mu for reading, the frozen table a chunk at a
// time, and makes its system calls (lstat; open_by_handle_at with O_PATH,
// which raises no permission event) without the lock.
func (x *identityIndex) carryOver(f *frozenIndex, n int, covered func(string) bool) *carry {
	walked := func(k fileKey) bool {
		_, ok := f.find(k.dev, k.ino)
		return ok
	}
	c := &carry{t: newIndexTables(), out: map[fileKey]outFile{}, seen: map[fileKey]carried{}, found: map[fileKey]bool{}}
	type cand struct {
		k fileKey
		carried
	}
	var cands []cand
	add := func(k fileKey, cd carried) {
		if _, dup := c.seen[k]; dup {
			return
		}
		c.seen[k] = cd
		if covered(cd.path) {
			cands = append(cands, cand{k, cd})
		}
	}
	x.mu.RLock()
	names, old := x.names, x.frozen
	c.gen = x.changes
	for k, o := range x.out {
		if walked(k) {
			c.found[k] = true
			continue
		}
		add(k, carried{path: o.path, from: fromOut, handle: o.handle})
	}
	for k, r := range x.t.files {
		if !walked(k) {
			add(k, carried{path: x.t.path(r), from: fromMaps})
		}
	}
	x.mu.RUnlock()
	if old != nil {
		// The frozen table is replaced only by a walk (walkMu is held), so
		// old stays valid; kill changes entries under mu. Most tables hold
		// one filesystem: then no record needs decoding for its device.
		oneDev, dev := len(old.dirs) > 0, uint64(0)
		for i, d := range old.dirs {
			if i == 0 {
				dev = d.dev
			} else if d.dev != dev {
				oneDev = false
				break
			}
		}
		for ci := range old.chunks {
			x.mu.RLock()
			for j := range old.chunks[ci] {
				e := &old.chunks[ci][j]
				if e.ref == 0 {
					continue
				}
				if !oneDev {
					d, _ := old.record(e.ref)
					dev = old.dirs[d].dev
				}
				if k := (fileKey{dev, e.ino()}); !walked(k) {
					add(k, carried{path: old.path(uint32(ci<<entryShift + j)), from: fromFrozen})
				}
			}
			x.mu.RUnlock()
		}
	}
	room := x.limit - n
	keep := func(k fileKey, o outFile) {
		if room <= 0 || len(c.out) >= x.outCap {
			c.full++
			return
		}
		c.out[k] = o
		room--
	}
	for _, cd := range cands {
		switch {
		case cd.from == fromOut && cd.handle.Valid() && names != nil:
			st, err := names.StatHandle(cd.handle)
			if err == nil && (st.Dev != cd.k.dev || st.Ino != cd.k.ino) ||
				errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT) {
				continue // gone (ENOENT: its filesystem is no longer watched)
			}
			keep(cd.k, outFile{path: cd.path, handle: cd.handle})
		case cd.from == fromOut:
			keep(cd.k, outFile{path: cd.path, handle: cd.handle})
		default:
			var st unix.Stat_t
			if unix.Lstat(cd.path, &st) == nil && uint64(st.Dev) == cd.k.dev && st.Ino == cd.k.ino {
				if room > 0 && len(c.t.files) < x.learnedCap {
					dir, base := splitPath(cd.path)
					c.t.put(cd.k, dir, base)
					room--
				}
				continue
			}
			if names != nil && names.WatchesDevice(cd.k.dev) {
				keep(cd.k, outFile{path: cd.path})
			}
		}
	}
	return c
}

// mergeLate brings in what changed in the index while carryOver ran
// without the lock: files learned or kept by identity since, and files it
// looked at that have moved or been forgotten since. Called with mu held.
func (c *carry) mergeLate(x *identityIndex, f *frozenIndex, covered func(string) bool) {
	if x.changes == c.gen {
		return
	}
	killWalked := func(k fileKey) {
		for i, ok := f.find(k.dev, k.ino); ok; i, ok = f.find(k.dev, k.ino) {
			f.kill(i)
		}
	}
	for k, cd := range c.seen {
		var now carried
		if o, ok := x.out[k]; ok {
			now = carried{path: o.path, from: fromOut, handle: o.handle}
		} else if r, ok := x.t.files[k]; ok {
			now = carried{path: x.t.path(r), from: fromMaps}
		} else if i, ok := x.frozen.find(k.dev, k.ino); ok {
			now = carried{path: x.frozen.path(i), from: fromFrozen}
		} else {
			// Forgotten since: its last name was deleted (forgetPath),
			// or, kept by identity, its inode number now belongs to
			// another file (sawChild).
			delete(c.out, k)
			c.t.remove(k)
			continue
		}
		switch {
		case now.from == cd.from && now.path == cd.path:
			if o, ok := c.out[k]; ok && !o.handle.Valid() && now.handle.Valid() {
				o.handle = now.handle
				c.out[k] = o
			}
		case !covered(now.path):
			delete(c.out, k)
			c.t.remove(k)
		case now.from == fromOut:
			c.t.remove(k)
			c.out[k] = outFile{path: now.path, handle: now.handle}
		case now.from == fromMaps:
			delete(c.out, k)
			dir, base := splitPath(now.path)
			c.t.put(k, dir, base)
		}
	}
	for k, o := range x.out {
		if _, ok := c.seen[k]; ok || c.found[k] || !covered(o.path) {
			continue
		}
		// Kept by identity since carryOver looked (the walk found it
		// under the name it has lost since): as keepByIdentity would
		// have done on the new index.
		killWalked(k)
		if len(c.out) < x.outCap {
			c.out[k] = o
		} else {
			c.full++
		}
	}
	for k, r := range x.t.files {
		if _, ok := c.seen[k]; ok || len(c.t.files) >= x.learnedCap {
			continue
		}
		if _, ok := f.find(k.dev, k.ino); ok {
			continue
		}
		// Learned since carryOver looked.
		if p := x.t.path(r); covered(p) {
			dir, base := splitPath(p)
			c.t.put(k, dir, base)
		}
	}
}
