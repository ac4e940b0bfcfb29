package bpflsm

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// BuildOptions are what Build needs besides the policies.
type BuildOptions struct {
	// HostRoot is where the host's root is seen ("" or "/" outside a pod).
	HostRoot string
	Mounts   *storage.Mounts
	Env      policy.Env
}

// Build turns a compiled policy set into a Plan: it walks the policies'
// directories once, giving every directory whose whole tree a policy
// covers an entry in Plan.Dirs, and a file an entry of its own in
// Plan.Files only where its rules differ from its tree's (another glob,
// an extension or an exclusion) or where it has other names (hard links)
// that may lie outside the tree.
func Build(m *policy.Matcher, opts BuildOptions) (*Plan, error) {
	root := opts.HostRoot
	if root == "" {
		root = "/"
	}
	host := func(p string) string { return filepath.Join(root, p) }
	b := newPlanBuilder(m, opts.Env, func(p string) (FileKey, bool) {
		var st syscall.Stat_t
		if err := syscall.Stat(host(p), &st); err != nil {
			return FileKey{}, false
		}
		return FileKey{Dev: KernelDev(st.Dev), Ino: st.Ino}, true
	})
	roots, _ := m.Roots()
	// tree classes of the directories walked so far, by path
	treeOf := map[string]uint32{}
	inherited := func(p string) (uint32, bool) {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			if c, ok := treeOf[d]; ok {
				return c, true
			}
			if d == "/" || d == "." {
				return 0, false
			}
		}
	}
	var walkErr error
	for _, r := range roots {
		err := filepath.WalkDir(host(r), func(hp string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return nil // unreadable: the programs still see its files through its tree
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			p := hp
			if root != "/" {
				rel, _ := filepath.Rel(root, hp)
				p = "/" + rel
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			key := FileKey{Dev: KernelDev(st.Dev), Ino: st.Ino}
			var in policy.Input
			if opts.Mounts != nil {
				_, info := opts.Mounts.Lookup(p)
				in.FSType, in.StorageClass = info.FSType, string(info.Class)
			}
			in.Env = opts.Env
			if d.IsDir() {
				tc, ok, err := b.treeClass(p, in)
				if err != nil {
					walkErr = errors.Join(walkErr, err)
				} else if ok {
					treeOf[p] = tc
					b.plan.Dirs[key] = tc
					b.plan.Paths[key] = p
				}
			}
			in.Path = p
			cands := m.Candidates(&in)
			up, hasTree := inherited(p)
			if len(cands) == 0 && !hasTree {
				return nil
			}
			if hasTree && sameRules(b, cands, up) && (d.IsDir() || st.Nlink <= 1) {
				return nil // its tree decides for it
			}
			cls, err := b.class(cands, p, "")
			if err != nil {
				walkErr = errors.Join(walkErr, err)
				return nil
			}
			b.plan.Files[key] = cls
			b.plan.Paths[key] = p
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			walkErr = errors.Join(walkErr, err)
		}
	}
	if walkErr != nil {
		return nil, walkErr
	}
	return b.plan, nil
}
