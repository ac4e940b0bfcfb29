package agent

import (
	"hash/maphash"
	"io/fs"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

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
	// walkMu makes walks take turns (a reload, a queue overflow of the
	// name watcher and a full index may each ask for one).
	walkMu sync.Mutex
}

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
	return &identityIndex{t: newIndexTables(), limit: limit, learnedCap: min(limit, learnedCap)}
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
	return "", false
}

func (x *identityIndex) learn(dev, ino uint64, path string) {
	k := fileKey{dev, ino}
	dir, base := splitPath(path)
	x.mu.RLock()
	r, inMaps := x.t.files[k]
	same := inMaps && x.t.is(r, dir, base)
	if !inMaps {
		i, ok := x.frozen.find(dev, ino)
		same = ok && x.frozen.is(i, dir, base)
	}
	x.mu.RUnlock()
	if same {
		return
	}
	x.mu.Lock()
	fi, inFrozen := x.frozen.find(dev, ino)
	if !inMaps && !inFrozen && (x.lenLocked() >= x.limit || len(x.t.files) >= x.learnedCap) {
		ask := !x.askedFor && len(x.t.files) >= x.learnedCap && x.onFull != nil
		x.askedFor = x.askedFor || ask
		x.mu.Unlock()
		if ask {
			x.onFull()
		}
		return
	}
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

func (x *identityIndex) lenLocked() int { return x.frozenLen() + len(x.t.files) }

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
	x.mu.Lock()
	x.frozen, x.t, x.askedFor = f, newIndexTables(), false
	x.mu.Unlock()
}
