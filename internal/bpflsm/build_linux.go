package bpflsm

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
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
	// Paths named literally are covered by name too: whichever file is
	// given that name later (an editor's save by rename, a restore) is
	// covered from that moment.
	for _, p := range m.Set().Policies {
		for _, g := range p.Spec.Files.Paths {
			if strings.ContainsAny(g, `*?[\`) || g == "/" {
				continue
			}
			var st syscall.Stat_t
			if err := syscall.Stat(host(filepath.Dir(g)), &st); err != nil {
				continue // no such directory yet (see the README's limits)
			}
			in := policy.Input{Path: g, Env: opts.Env}
			if opts.Mounts != nil {
				_, info := opts.Mounts.Lookup(g)
				in.FSType, in.StorageClass = info.FSType, string(info.Class)
			}
			cands := m.Candidates(&in)
			if len(cands) == 0 {
				continue
			}
			cls, err := b.class(cands, g, "")
			if err != nil {
				return nil, err
			}
			b.plan.Names[NameKey{Dev: KernelDev(st.Dev), Dir: st.Ino, Hash: nameHash(filepath.Base(g))}] = cls
			b.plan.Paths[FileKey{Dev: KernelDev(st.Dev), Ino: st.Ino}] = filepath.Dir(g)
		}
	}
	b.mounts = opts.Mounts
	b.exeName = func(p string) (NameKey, bool) {
		var st syscall.Stat_t
		if err := syscall.Stat(host(filepath.Dir(p)), &st); err != nil {
			return NameKey{}, false
		}
		return NameKey{Dev: KernelDev(st.Dev), Dir: st.Ino, Hash: nameHash(filepath.Base(p))}, true
	}
	b.plan.builder = b
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
