package bpflsm

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
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

// Build turns a compiled policy set into a Plan. Every directory a glob
// of the form DIR/*, DIR/** or a literal path names (and every mount below
// a DIR/**) gets places: what covers the files directly in it and below
// it, by extension or all, and by name, so that a file created there later
// is covered from that moment. It then walks the policies' directories
// once and gives a file an entry of its own only where the kernel would
// place it otherwise than the policies say (another glob, an exclusion, a
// filesystem selector) or where it has other names (hard links) that may
// lie outside.
func Build(m *policy.Matcher, opts BuildOptions) (*Plan, error) {
	root := opts.HostRoot
	if root == "" {
		root = "/"
	}
	host := func(p string) string { return filepath.Join(root, p) }
	stat := func(p string) (syscall.Stat_t, bool) {
		var st syscall.Stat_t
		err := syscall.Stat(host(p), &st)
		return st, err == nil
	}
	b := newPlanBuilder(m, opts.Env, func(p string) (FileKey, bool) {
		st, ok := stat(p)
		return FileKey{Dev: KernelDev(st.Dev), Ino: st.Ino}, ok
	})
	b.mounts = opts.Mounts
	b.plan.builder = b
	b.plan.walked = map[FileKey]bool{}
	b.exeName = func(p string) (NameKey, bool) {
		st, ok := stat(filepath.Dir(p))
		return NameKey{Dev: KernelDev(st.Dev), Dir: st.Ino, Hash: nameHash(filepath.Base(p))}, ok
	}
	var errs []error
	for _, loc := range b.locations() {
		st, ok := stat(loc)
		if !ok {
			b.plan.Missing = append(b.plan.Missing, loc)
			continue
		}
		if err := b.placesAt(loc, KernelDev(st.Dev), st.Ino); err != nil {
			errs = append(errs, err)
		}
	}
	roots, _ := m.Roots()
	for _, r := range roots {
		_ = filepath.WalkDir(host(r), func(hp string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink != 0 {
				return nil // unreadable or gone: the kernel still places it
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
			b.plan.walked[FileKey{Dev: KernelDev(st.Dev), Ino: st.Ino}] = true
			if err := b.file(p, st, d.IsDir()); err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b.plan, nil
}

// input is the policy input for a path: its filesystem's type and class.
func (b *planBuilder) input(p string) policy.Input {
	in := policy.Input{Path: p, Env: b.env}
	if b.mounts != nil {
		_, info := b.mounts.Lookup(p)
		in.FSType, in.StorageClass = info.FSType, string(info.Class)
	}
	return in
}

// locations are the directories that get places.
func (b *planBuilder) locations() []string {
	set := map[string]bool{}
	var trees []string
	for pi, p := range b.m.Set().Policies {
		for _, g := range b.globs[pi] {
			if g.kind == globTree {
				trees = append(trees, g.dir)
			}
			if g.kind == globTree || g.kind == globChild {
				set[g.dir] = true
			}
		}
		for _, g := range p.Spec.Files.Paths {
			if isLiteral(g) && g != "/" {
				set[filepath.Dir(g)] = true
			}
		}
	}
	// The kernel walks a file's directories within its filesystem: a
	// filesystem mounted below a tree needs places at its root.
	if b.mounts != nil {
		for _, mt := range b.mounts.Table().Mounts() {
			for _, t := range trees {
				if under(mt.MountPoint, t) && mt.MountPoint != t {
					set[mt.MountPoint] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

const probe = ".drmfilter-probe"

// placesAt gives directory loc (dev, ino) its places: everything that
// covers the files directly in it and below it, its ancestors' policies
// included.
func (b *planBuilder) placesAt(loc string, dev uint32, ino uint64) error {
	exts := map[string]bool{}
	for pi := range b.m.Set().Policies {
		if b.coversChild(pi, loc, "", true) {
			for _, e := range b.m.Set().Policies[pi].Spec.Files.Extensions {
				exts[e] = true
			}
		}
	}
	add := func(kind uint32, hash uint64, cands []policy.Candidate, example string) error {
		if len(cands) == 0 {
			return nil
		}
		cls, err := b.class(cands, example)
		if err != nil {
			return err
		}
		b.plan.Places[PlaceKey{Dev: dev, Kind: kind, Dir: ino, Hash: hash}] = cls
		return nil
	}
	childProbe := strings.TrimSuffix(loc, "/") + "/" + probe
	treeProbe := childProbe + "/" + probe
	var errs []error
	keep := func(cands []policy.Candidate, covers func(pi int) bool) []policy.Candidate {
		var out []policy.Candidate
		for _, c := range cands {
			if covers(c.Policy) {
				out = append(out, c)
			}
		}
		return out
	}
	for _, view := range []struct {
		probe      string
		any, ext   uint32
		covers     func(pi int, e string) bool
		isTreeView bool
	}{
		{childProbe, plChildAny, plChildExt, func(pi int, e string) bool { return b.coversChild(pi, loc, e, false) }, false},
		{treeProbe, plTreeAny, plTreeExt, func(pi int, e string) bool { return b.coversTree(pi, loc, e, false) }, true},
	} {
		in := b.input(view.probe)
		cands := keep(b.m.Candidates(&in), func(pi int) bool { return view.covers(pi, "") })
		errs = append(errs, add(view.any, 0, cands, view.probe))
		for e := range exts {
			in := b.input(view.probe + "." + e)
			cands := keep(b.m.Candidates(&in), func(pi int) bool { return view.covers(pi, e) })
			errs = append(errs, add(view.ext, extHash(e), cands, view.probe+"."+e))
		}
	}
	for _, p := range b.m.Set().Policies {
		for _, g := range p.Spec.Files.Paths {
			if isLiteral(g) && g != "/" && filepath.Dir(g) == loc {
				in := b.input(g)
				errs = append(errs, add(plName, nameHash(filepath.Base(g)), b.m.Candidates(&in), g))
			}
		}
	}
	b.plan.Places[PlaceKey{Dev: dev, Kind: plHere, Dir: ino}] = 0
	b.here[loc] = hereDir{dev: dev, ino: ino}
	b.plan.Paths[FileKey{Dev: dev, Ino: ino}] = loc
	cls, _ := b.plan.Places[PlaceKey{Dev: dev, Kind: plTreeAny, Dir: ino}]
	b.plan.Dirs[FileKey{Dev: dev, Ino: ino}] = cls
	return errors.Join(errs...)
}

// file decides whether a walked file or directory needs an entry of its
// own: when the kernel would place it with other rules than the policies
// give it, or when it has other names.
func (b *planBuilder) file(p string, st *syscall.Stat_t, isDir bool) error {
	in := b.input(p)
	cands := b.m.Candidates(&in)
	dev := KernelDev(st.Dev)
	sim, placed := b.simPlace(p, dev)
	if !placed && len(cands) == 0 {
		return nil
	}
	if placed && sameRules(b, cands, sim) && (isDir || st.Nlink <= 1) {
		return nil // the kernel places it right
	}
	cls, err := b.class(cands, p)
	if err != nil {
		return err
	}
	key := FileKey{Dev: dev, Ino: st.Ino}
	b.plan.Files[key] = cls
	b.plan.Paths[key] = p
	return nil
}

// simPlace is what the programs' place() finds for path p on device dev,
// from the places alone; false when it is not covered or when the path
// does not say for sure (the walk would leave the filesystem).
func (b *planBuilder) simPlace(p string, dev uint32) (uint32, bool) {
	dir, name := filepath.Dir(p), filepath.Base(p)
	if p == "/" {
		return 0, false
	}
	exts := kernelExts(name)
	lookup := func(h hereDir, kind uint32, hash uint64) (uint32, bool) {
		c, ok := b.plan.Places[PlaceKey{Dev: h.dev, Kind: kind, Dir: h.ino, Hash: hash}]
		return c, ok
	}
	byExt := func(h hereDir, kind uint32) (uint32, bool) {
		for j := len(exts) - 1; j >= 0; j-- {
			if c, ok := lookup(h, kind, extHash(exts[j])); ok {
				return c, true
			}
		}
		return 0, false
	}
	if h, ok := b.here[dir]; ok && h.dev == dev {
		if c, ok := lookup(h, plName, nameHash(name)); ok {
			return c, true
		}
		if c, ok := byExt(h, plChildExt); ok {
			return c, true
		}
		return lookup(h, plChildAny, 0)
	}
	for d := dir; d != "/"; {
		d = filepath.Dir(d)
		if h, ok := b.here[d]; ok && h.dev == dev {
			if c, ok := byExt(h, plTreeExt); ok {
				return c, true
			}
			return lookup(h, plTreeAny, 0)
		}
		if b.mounts != nil {
			if mt, _ := b.mounts.Lookup(d); mt.MountPoint == d {
				return 0, false // the kernel's walk ends at its filesystem's root
			}
		}
	}
	return 0, false
}

// kernelExts are the extensions the programs see in a name: after each of
// the last MAX_EXTS dots that is not the first byte, 1 to MAX_EXT_LEN
// bytes long, the last dot's first.
func kernelExts(name string) []string {
	var out []string
	for i := len(name) - 1; i >= 1 && len(out) < maxExts; i-- {
		if name[i] != '.' {
			continue
		}
		if n := len(name) - i - 1; n >= 1 && n <= maxExtLen {
			out = append(out, asciiLowerString(name[i+1:]))
		}
	}
	return out
}
