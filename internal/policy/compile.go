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

	// hostExes caches which file is installed on the host at the
	// executable paths rules name (nil when no rule names executables).
	// It is the Matcher's only mutable state: a cache, rebuilt with the
	// Matcher on every reload.
	hostExes *hostExeCache
}

type pathTarget struct {
	policy int32
	spec   int32 // the glob's specificity
}

// The compiled structures below are what a loaded policy set costs the
// agent for as long as it runs, so they keep only what Decide needs and
// share the rest with the Set: strings, selectors and ids are the Set's,
// small sets are slices rather than maps, and everything Explain alone
// uses (the path globs, a rule's source) is found again from the Set.

type cpolicy struct {
	idx      int32
	audit    bool    // audit mode: may only record, never change a verdict
	hasPaths bool    // paths or containerPaths
	src      *Policy // its name, rule names and sources

	exts    strSet   // empty: any extension
	fsTypes []string // empty: any
	classes []string // empty: any
	// excludePats are tried one by one; a policy with more than
	// excludeTrieMin of them has them in the trie exclude instead.
	excludePats []*glob.Pattern
	exclude     *glob.Trie
	rules       []crule
}

// excludeTrieMin is the most exclusions a policy matches one by one, which
// is as fast as a trie for so few and costs far less memory.
const excludeTrieMin = 8

type crule struct {
	subj   csubject
	idx    int32 // in the policy's Spec.Rules
	spec   int32 // subject specificity: how many kinds of subject condition it names
	ops    Operation
	effect Effect
}

// csubject is a rule's compiled subject selector: the executables sorted
// into literal names and globs; every other condition is read from src.
type csubject struct {
	src *Subjects // nil: every process
	exe *exeSet   // nil: any executable
}

type exeSet struct {
	exact strSet
	globs []*glob.Pattern
}

// Compile turns a loaded Set into a Matcher. The Set must come from Load,
// which has validated it; Compile does not fail.
func Compile(set *Set, opts CompileOptions) *Matcher {
	m := &Matcher{set: set, byExt: map[string][]int32{}, policies: make([]*cpolicy, 0, len(set.Policies))}
	nrules, nexe, npaths := 0, 0, 0
	for _, p := range set.Policies {
		nrules += len(p.Spec.Rules)
		for i := range p.Spec.Rules {
			if s := p.Spec.Rules[i].Subjects; s != nil && len(s.Executables) > 0 {
				nexe++
			}
		}
		npaths += len(p.Spec.Files.Paths) + len(p.Spec.Files.ContainerPaths)
	}
	// One allocation each for every policy, rule and executable selector.
	cpols := make([]cpolicy, len(set.Policies))
	crules := make([]crule, 0, nrules)
	exes := make([]exeSet, 0, nexe)
	m.pathTargets = make([]pathTarget, 0, npaths)
	for i, p := range set.Policies {
		cp := &cpols[i]
		*cp = cpolicy{
			idx:      int32(i),
			audit:    opts.ForceAudit || p.Spec.Mode == ModeAudit,
			src:      p,
			hasPaths: len(p.Spec.Files.Paths)+len(p.Spec.Files.ContainerPaths) > 0,
			fsTypes:  p.Spec.Files.Filesystems,
			classes:  p.Spec.Files.StorageClasses,
		}
		files := &p.Spec.Files
		if len(files.Extensions) > 0 && cp.hasPaths {
			cp.exts = newStrSet(files.Extensions)
		}
		if len(files.ExcludePaths) > excludeTrieMin {
			cp.exclude = &glob.Trie{}
			for _, ex := range files.ExcludePaths {
				cp.exclude.Insert(glob.MustCompile(ex), 0)
			}
		} else if len(files.ExcludePaths) > 0 {
			cp.excludePats = make([]*glob.Pattern, len(files.ExcludePaths))
			for j, ex := range files.ExcludePaths {
				cp.excludePats[j] = glob.MustCompile(ex)
			}
		}
		switch {
		case cp.hasPaths:
			for _, g := range files.Paths {
				pat := glob.MustCompile(g)
				m.paths.Insert(pat, int32(len(m.pathTargets)))
				m.pathTargets = append(m.pathTargets, pathTarget{policy: cp.idx, spec: int32(pat.Specificity())})
			}
			for _, g := range files.ContainerPaths {
				pat := glob.MustCompile(g)
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
		first := len(crules)
		for j := range p.Spec.Rules {
			r := &p.Spec.Rules[j]
			cr := crule{idx: int32(j), ops: r.Operations, effect: r.Effect}
			if s := r.Subjects; s != nil {
				cr.subj.src = s
				if len(s.Executables) > 0 {
					exes = append(exes, compileExecutables(s.Executables))
					cr.subj.exe = &exes[len(exes)-1]
				}
				cr.spec = subjectSpecificity(s)
				if len(s.ExecutableHashes) > 0 {
					m.needsHash = true
				}
			}
			m.ops |= r.Operations
			crules = append(crules, cr)
			m.rules++
		}
		cp.rules = crules[first:len(crules):len(crules)]
		m.policies = append(m.policies, cp)
	}
	for e, ps := range m.byExt {
		m.byExt[e] = slices.Clip(ps)
	}
	if nexe > 0 {
		m.hostExes = newHostExeCache()
	}
	return m
}

// compileExecutables sorts executables into literal names and globs.
func compileExecutables(exes []string) exeSet {
	var e exeSet
	var exact []string
	for _, x := range exes {
		pat := glob.MustCompile(x)
		if pat.IsLiteral() {
			exact = append(exact, x)
		} else {
			e.globs = append(e.globs, pat)
		}
	}
	if len(exact) == len(exes) {
		exact = exes // share the Set's slice
	}
	e.exact = newStrSet(exact)
	return e
}

// subjectSpecificity is how many kinds of condition s names.
func subjectSpecificity(s *Subjects) int32 {
	var spec int32
	for _, given := range []bool{len(s.Executables) > 0, len(s.ExecutableHashes) > 0, len(s.Scripts) > 0, len(s.Users) > 0,
		len(s.Groups) > 0, s.Container != nil, s.Kubernetes != nil, s.Environment != nil} {
		if given {
			spec++
		}
	}
	return spec
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
		if !p.hasPaths || len(p.src.Spec.Files.ContainerPaths) > 0 {
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
