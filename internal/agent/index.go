package agent

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// maxIndexed bounds the identity index (about 100 bytes an entry).
const maxIndexed = 1 << 20

type fileKey struct{ dev, ino uint64 }

// identityIndex maps the device and inode of protected files to a
// protected path, so a file reached by another name (a hard link, a bind
// mount, a path in another mount namespace, open_by_handle_at) is decided
// as the protected file it is. It is filled by walking the policies' roots
// at start and reload, and learns every covered file the agent decides.
type identityIndex struct {
	mu    sync.RWMutex
	files map[fileKey]string
	paths map[string]fileKey // reverse of files, to forget deleted files
	limit int
}

func newIdentityIndex(limit int) *identityIndex {
	return &identityIndex{files: map[fileKey]string{}, paths: map[string]fileKey{}, limit: limit}
}

func (x *identityIndex) lookup(dev, ino uint64) (string, bool) {
	x.mu.RLock()
	p, ok := x.files[fileKey{dev, ino}]
	x.mu.RUnlock()
	return p, ok
}

func (x *identityIndex) learn(dev, ino uint64, path string) {
	k := fileKey{dev, ino}
	x.mu.RLock()
	cur, ok := x.files[k]
	x.mu.RUnlock()
	if ok && cur == path {
		return
	}
	x.mu.Lock()
	if len(x.files) < x.limit || ok {
		if ok {
			delete(x.paths, cur)
		}
		x.files[k] = path
		x.paths[path] = k
	}
	x.mu.Unlock()
}

// forgetPath drops the file last indexed under path (its last name was
// deleted, so its inode number may be reused by an unrelated file).
func (x *identityIndex) forgetPath(path string) {
	x.mu.Lock()
	if k, ok := x.paths[path]; ok {
		delete(x.paths, path)
		if x.files[k] == path {
			delete(x.files, k)
		}
	}
	x.mu.Unlock()
}

func (x *identityIndex) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.files)
}

// rebuild walks every root of st and indexes the files st covers. Files
// appear in the index before the policy that covers them is swapped in.
func (x *identityIndex) rebuild(st *policyState, mounts *storage.Mounts, env policy.Env) {
	files := map[fileKey]string{}
	for _, root := range st.roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable: skip, keep walking
			}
			if len(files) >= x.limit {
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
				files[fileKey{uint64(sys.Dev), sys.Ino}] = p
			}
			return nil
		})
	}
	paths := make(map[string]fileKey, len(files))
	for k, p := range files {
		paths[p] = k
	}
	x.mu.Lock()
	x.files, x.paths = files, paths
	x.mu.Unlock()
}
