package policy

import (
	"slices"
	"strings"

	"github.com/drmfilter/drmfilter/internal/glob"
)

// CompileOptions tune Compile.
type CompileOptions struct {
	// ForceAudit puts every policy in audit mode, whatever its spec says
	// (the agent's global --mode audit).
	ForceAudit bool
}

// Matcher is a compiled, immutable policy set. Decide may be called from
// any number of goroutines.
type Matcher struct {
	set      *Set
	policies []*cpolicy // in name order; the index is the tie-breaker

	// Policies with path globs are found through the trie: its ids index
	// pathTargets. Policies without paths but with extensions are found by
	// extension, and the few with neither are checked for every file.
	paths       glob.Trie
	cpaths      glob.Trie // container paths; ids index pathTargets too
	pathTargets []pathTarget
	byExt       map[string][]int32
	unanchored  []int32

	ops       Operation
	needsHash bool
	rules     int
}

type pathTarget struct {
	policy int32
	spec   int32 // the glob's specificity
}

type cpolicy struct {
	idx   int32
	name  string
	audit bool // audit mode: may only record, never change a verdict
	src   *Policy

	hasPaths    bool                // paths or containerPaths
	pathPats    []*glob.Pattern     // for Explain
	cpathPats   []*glob.Pattern     // for Explain
	excludePats []*glob.Pattern     // for Explain
	exts        map[string]struct{} // nil: any extension
	fsTypes     []string            // empty: any
	classes     []string            // empty: any
	exclude     glob.Trie
	rules       []crule
}

type crule struct {
	idx    int32
	name   string
	ops    Operation
	effect Effect
	spec   int32     // subject specificity: how many kinds of subject condition it names
	subj   *csubject // nil: every process
	src    *Rule
}

type csubject struct {
	exeExact  map[string]struct{}
	exeGlobs  []*glob.Pattern
	hashes    [][32]byte
	uids      []uint32
	gids      []uint32
	container *ContainerSelector
	kube      *KubernetesSelector
	env       *EnvironmentSelector
}

// Compile turns a loaded Set into a Matcher. The Set must come from Load,
// which has validated it; Compile does not fail.
func Compile(set *Set, opts CompileOptions) *Matcher {
	m := &Matcher{set: set, byExt: map[string][]int32{}}
	for i, p := range set.Policies {
		cp := &cpolicy{
			idx:      int32(i),
			name:     p.Name,
			audit:    opts.ForceAudit || p.Spec.Mode == ModeAudit,
			src:      p,
			hasPaths: len(p.Spec.Files.Paths)+len(p.Spec.Files.ContainerPaths) > 0,
			fsTypes:  p.Spec.Files.Filesystems,
			classes:  p.Spec.Files.StorageClasses,
		}
		files := &p.Spec.Files
		if len(files.Extensions) > 0 && cp.hasPaths {
			cp.exts = map[string]struct{}{}
			for _, e := range files.Extensions {
				cp.exts[e] = struct{}{}
			}
		}
		for _, ex := range files.ExcludePaths {
			pat := glob.MustCompile(ex)
			cp.exclude.Insert(pat, 0)
			cp.excludePats = append(cp.excludePats, pat)
		}
		switch {
		case cp.hasPaths:
			for _, g := range files.Paths {
				pat := glob.MustCompile(g)
				cp.pathPats = append(cp.pathPats, pat)
				m.paths.Insert(pat, int32(len(m.pathTargets)))
				m.pathTargets = append(m.pathTargets, pathTarget{policy: cp.idx, spec: int32(pat.Specificity())})
			}
			for _, g := range files.ContainerPaths {
				pat := glob.MustCompile(g)
				cp.cpathPats = append(cp.cpathPats, pat)
				m.cpaths.Insert(pat, int32(len(m.pathTargets)))
				m.pathTargets = append(m.pathTargets, pathTarget{policy: cp.idx, spec: int32(pat.Specificity())})
			}
		case len(files.Extensions) > 0:
			for _, e := range files.Extensions {
				m.byExt[e] = append(m.byExt[e], cp.idx)
			}
		default:
			m.unanchored = append(m.unanchored, cp.idx)
		}
		for j := range p.Spec.Rules {
			r := &p.Spec.Rules[j]
			cr := crule{idx: int32(j), name: r.Name, ops: r.Operations, effect: r.Effect, src: r}
			if r.Subjects != nil {
				cr.subj, cr.spec = compileSubjects(r.Subjects)
				if len(r.Subjects.ExecutableHashes) > 0 {
					m.needsHash = true
				}
			}
			m.ops |= r.Operations
			cp.rules = append(cp.rules, cr)
			m.rules++
		}
		m.policies = append(m.policies, cp)
	}
	return m
}

func compileSubjects(s *Subjects) (*csubject, int32) {
	c := &csubject{hashes: s.ExecutableHashes, container: s.Container, kube: s.Kubernetes, env: s.Environment}
	var spec int32
	if len(s.Executables) > 0 {
		spec++
		for _, e := range s.Executables {
			pat := glob.MustCompile(e)
			if pat.IsLiteral() {
				if c.exeExact == nil {
					c.exeExact = map[string]struct{}{}
				}
				c.exeExact[e] = struct{}{}
			} else {
				c.exeGlobs = append(c.exeGlobs, pat)
			}
		}
	}
	if len(s.ExecutableHashes) > 0 {
		spec++
	}
	if len(s.Users) > 0 {
		spec++
		for _, u := range s.Users {
			c.uids = append(c.uids, u.ID)
		}
	}
	if len(s.Groups) > 0 {
		spec++
		for _, g := range s.Groups {
			c.gids = append(c.gids, g.ID)
		}
	}
	if s.Container != nil {
		spec++
	}
	if s.Kubernetes != nil {
		spec++
	}
	if s.Environment != nil {
		spec++
	}
	return c, spec
}

// Set returns the policies the Matcher was compiled from.
func (m *Matcher) Set() *Set { return m.set }

// Operations is every operation some rule names; the agent asks the kernel
// only for these.
func (m *Matcher) Operations() Operation { return m.ops }

// HasContainerPaths reports whether some policy names container paths, so
// that deciding a containerised process's operation needs the path as it
// sees it (Input.ContainerPath), and a verdict for a file cannot be cached
// for every process.
func (m *Matcher) HasContainerPaths() bool { return !m.cpaths.Empty() }

// NeedsHash reports whether some rule selects executables by hash.
func (m *Matcher) NeedsHash() bool { return m.needsHash }

// Rules is the number of compiled rules.
func (m *Matcher) Rules() int { return m.rules }

// Roots returns the literal directory prefix of every path glob, deduplicated
// and without prefixes of one another (/srv/finance/** gives /srv/finance),
// and whether some policy selects files by extension, filesystem or storage
// class alone, so that files anywhere may be covered. The agent uses them
// to mark only the filesystems that hold protected files.
func (m *Matcher) Roots() (roots []string, anywhere bool) {
	for _, p := range m.policies {
		if !p.hasPaths || len(p.cpathPats) > 0 {
			// A container path can be any host path (overlay roots,
			// volumes): such policies need every filesystem.
			anywhere = true
		}
		if !p.hasPaths {
			continue
		}
		for _, g := range p.src.Spec.Files.Paths {
			roots = append(roots, literalDir(g))
		}
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	out := roots[:0]
	for _, r := range roots {
		if len(out) > 0 {
			last := out[len(out)-1]
			if last == "/" || strings.HasPrefix(r, last+"/") {
				continue
			}
		}
		out = append(out, r)
	}
	return out, anywhere
}

// literalDir is the longest leading part of a glob with no wildcard that
// names a directory or the file itself.
func literalDir(g string) string {
	i := strings.IndexAny(g, `*?[\`)
	if i < 0 {
		return g
	}
	j := strings.LastIndexByte(g[:i], '/')
	if j <= 0 {
		return "/"
	}
	return g[:j]
}
