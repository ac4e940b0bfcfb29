package bpflsm

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// Operations as the programs name them (OP_* in bpf/drmfilter.bpf.c).
const (
	kopOpen uint32 = 1 << iota
	kopExec
	kopRead
	kopWrite
	kopDelete
	kopRename
	kopLink
	kopTruncate
	kopSetattr
)

// Rule effects and subject kinds, as the programs name them.
const (
	keffAllow = 1
	keffAudit = 2
	keffDeny  = 3

	kruleExe    = 1 << 0
	kruleUID    = 1 << 1
	kruleGID    = 1 << 2
	kruleScript = 1 << 3

	ksubjExe    = 1
	ksubjUID    = 2
	ksubjGID    = 3
	ksubjScript = 4
)

// maxClassRules is MAX_CLASS_RULES in the programs: the most rules that
// can decide for one file.
const maxClassRules = 32

// maxExeRules is MAX_EXE_RULES: the most rules that may name one
// executable path.
const maxExeRules = 16

// kernelOps maps the policy language's operations to the programs' bits.
func kernelOps(o policy.Operation) uint32 {
	var k uint32
	for _, m := range opMap {
		if o&m.op != 0 {
			k |= m.k
		}
	}
	return k
}

var opMap = []struct {
	op policy.Operation
	k  uint32
}{{policy.OpOpen, kopOpen}, {policy.OpExec, kopExec}, {policy.OpRead, kopRead}, {policy.OpWrite, kopWrite},
	{policy.OpDelete, kopDelete}, {policy.OpRename, kopRename}, {policy.OpLink, kopLink},
	{policy.OpTruncate, kopTruncate}, {policy.OpSetattr, kopSetattr}}

// OpName names a kernel operation bit set, for audit records.
func opName(k uint32) policy.Operation {
	var o policy.Operation
	for _, m := range opMap {
		if k&m.k != 0 {
			o |= m.op
		}
	}
	return o
}

// FileKey is a file as the kernel knows it: its superblock's device number
// in the kernel's encoding (major<<20 | minor, not the stat(2) encoding)
// and its inode number.
type FileKey struct {
	Dev uint32
	Ino uint64
}

// KernelDev converts a stat(2) device number to the kernel's encoding.
func KernelDev(statDev uint64) uint32 {
	major := uint32((statDev>>8)&0xfff) | uint32((statDev>>32)&^0xfff)
	minor := uint32(statDev&0xff) | uint32((statDev>>12)&^0xff)
	return major<<20 | minor
}

// NameKey is a name in a directory, as the kernel finds it: the
// directory's device (kernel encoding) and inode, and the FNV-1a 64 hash of
// the name.
type NameKey struct {
	Dev uint32
	Dir uint64
	// Hash is nameHash of the name.
	Hash uint64
}

// nameHash is the programs' name_hash: FNV-1a 64 of the name's bytes.
func nameHash(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()
}

// Rule is one rule as the programs see it.
type Rule struct {
	Ops    uint32
	Effect uint32
	Flags  uint32
	// Policy and Name identify it in audit records.
	Policy, Name string
	Audit        bool // from an audit-mode policy
}

// Class is the ordered list of rules (indexes in Plan.Rules) that decide
// for a set of files, enforcing ones first.
type Class struct {
	Rules   []uint32
	Enforce int    // how many of Rules are enforcing
	Example string // a path whose candidates gave this class
}

// Kinds of places (PL_* in the programs).
const (
	plHere     = 1
	plName     = 2
	plChildExt = 3
	plChildAny = 4
	plTreeExt  = 5
	plTreeAny  = 6
)

// PlaceKey is one of a directory's places: what covers the files in it
// by name, by extension or all, directly in it or anywhere below.
type PlaceKey struct {
	Dev  uint32
	Kind uint32
	Dir  uint64
	Hash uint64 // nameHash (plName), extHash (plChildExt, plTreeExt), else 0
}

// maxExts and maxExtLen are MAX_EXTS and MAX_EXT_LEN in the programs:
// the extensions of a name they look at.
const (
	maxExts   = 4
	maxExtLen = 32
)

// extHash is the programs' hash of an extension: FNV-1a 64 of its bytes,
// lower-cased, taken from the last to the first (so that the programs
// hash every extension of a name in one pass from its end).
func extHash(ext string) uint64 {
	h := fnv.New64a()
	b := []byte(asciiLowerString(ext))
	for i := len(b) - 1; i >= 0; i-- {
		_, _ = h.Write(b[i : i+1])
	}
	return h.Sum64()
}

func asciiLowerString(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// SubjectKey is one subject part of a rule: an executable, uid or gid.
type SubjectKey struct {
	Rule uint32
	Kind uint32
	Dev  uint32
	Val  uint64
}

// Plan is a policy generation in the form the programs read.
type Plan struct {
	Rules   []Rule
	Classes []Class
	Files   map[FileKey]uint32 // file or directory -> class
	// Places are what directories give the files in them and below them.
	Places map[PlaceKey]uint32
	// Dirs are the directories with places, with the class of the files
	// anywhere below them (0 when none).
	Dirs map[FileKey]uint32
	// Missing are directories the policies name that do not exist: files
	// created there later are covered only after the next build.
	Missing []string
	// Exes are the executables and scripts the rules name, as resolved on
	// the host at build: path -> identity (the zero FileKey when none is
	// installed).
	Exes map[string]FileKey
	// ExeNames are those paths as the kernel finds them, with the rules
	// naming each: a file renamed or linked there becomes the executable
	// the rules mean, in the kernel, at the rename.
	ExeNames map[NameKey][]uint32
	Subjects []SubjectKey
	Ops      uint32 // every operation some rule names
	// Paths names the files and directories the plan knows, for audit
	// records (a file reached through a tree is named from its tree).
	Paths map[FileKey]string

	classIDs map[string]uint32
	ruleIDs  map[[2]int]uint32
	// builder finds the class of a path in this plan's policies, for
	// files the kernel kept by identity under the previous plan; nil for
	// plans not made by Build.
	builder *planBuilder
	// loaded: the classes are in the kernel; no class may be added.
	loaded bool
	// walked are the files and directories Build's walk found: the plan
	// places them as the policies say, so what the previous programs
	// kept of them by identity is not carried over.
	walked map[FileKey]bool
}

// classFor is the class this plan gives a file that another plan placed
// in class c: the class of c's example path. New classes are added only
// before the plan is loaded.
func (p *Plan) classFor(c Class) (uint32, bool) {
	if p.builder == nil || c.Example == "" {
		return 0, false
	}
	b := p.builder
	in := policy.Input{Path: c.Example, Env: b.env}
	if b.mounts != nil {
		_, info := b.mounts.Lookup(c.Example)
		in.FSType, in.StorageClass = info.FSType, string(info.Class)
	}
	cands := b.m.Candidates(&in)
	if len(cands) == 0 {
		return 0, false // no longer covered
	}
	if p.loaded {
		for i := range p.Classes {
			if sameRules(b, cands, uint32(i)) {
				return uint32(i), true
			}
		}
		return 0, false
	}
	id, err := b.class(cands, c.Example)
	return id, err == nil
}

// PolicyBackend is the bpf backend as the policy language sees it: every
// operation, and the selectors the programs cannot decide yet, which
// policy.Set.Unsupported reports with their positions (the agent refuses
// such a set on this backend, and `policy check --backend bpf` says so).
func PolicyBackend() policy.Backend {
	b := policy.BPFBackend()
	b.Checks = []policy.RuleCheck{unsupportedInKernel}
	return b
}

const useFanotify = "use --backend fanotify (or auto, which picks it) for this policy"

func unsupportedInKernel(p *policy.Policy, r *policy.Rule) []policy.Limit {
	var out []policy.Limit
	add := func(pos policy.Pos, field, what string) {
		out = append(out, policy.Limit{Pos: pos, Field: field, What: what + " (not decided in the kernel yet)", Fix: useFanotify})
	}
	// The file selector's limits are reported once, with the first rule.
	if f := &p.Spec.Files; len(p.Spec.Rules) > 0 && r == &p.Spec.Rules[0] {
		if len(f.ContainerPaths) > 0 {
			add(f.Pos, "", "files.containerPaths")
		}
		if len(f.Paths) == 0 {
			add(f.Pos, "", "a file selector without paths (extensions, filesystems or storage classes alone)")
		}
	}
	s := r.Subjects
	if s == nil {
		return out
	}
	for _, e := range s.Executables {
		if !isLiteral(e) {
			add(s.Pos, "subjects.executables", "an executables glob ("+e+")")
		}
	}
	if len(s.ExecutableHashes) > 0 {
		add(s.Pos, "subjects.executableHashes", "executableHashes")
	}
	if s.Container != nil {
		add(s.Pos, "subjects.container", "a container selector")
	}
	if s.Kubernetes != nil {
		add(s.Pos, "subjects.kubernetes", "a Kubernetes selector")
	}
	return out
}

// Unsupported lists what the bpf backend cannot decide in a policy set,
// as policy.Set.Unsupported does for PolicyBackend.
func Unsupported(set *policy.Set) []error {
	var errs []error
	for _, e := range set.Unsupported(PolicyBackend()) {
		errs = append(errs, e)
	}
	return errs
}

// planBuilder builds a Plan.
type planBuilder struct {
	m    *policy.Matcher
	env  policy.Env
	plan *Plan
	// globs are each policy's path globs of the forms the programs place
	// (DIR/*, DIR/**) when the policy selects files by path and extension
	// alone; nil for a policy with other selectors (exclusions,
	// filesystems, storage classes), whose files only the walk places.
	globs [][]pglob
	// here are the directories with places, by path.
	here map[string]hereDir
	// exe resolves an executable path on the host to its identity.
	exe    func(path string) (FileKey, bool)
	mounts *storage.Mounts
	// exeName is where the kernel finds an executable path's name.
	exeName func(path string) (NameKey, bool)
}

func newPlanBuilder(m *policy.Matcher, env policy.Env, exe func(string) (FileKey, bool)) *planBuilder {
	b := &planBuilder{m: m, env: env, exe: exe, here: map[string]hereDir{},
		globs: make([][]pglob, len(m.Set().Policies)),
		plan: &Plan{Files: map[FileKey]uint32{}, Places: map[PlaceKey]uint32{}, Dirs: map[FileKey]uint32{}, Exes: map[string]FileKey{}, ExeNames: map[NameKey][]uint32{}, Paths: map[FileKey]string{},
			classIDs: map[string]uint32{}, ruleIDs: map[[2]int]uint32{}}}
	for i, p := range m.Set().Policies {
		f := &p.Spec.Files
		if len(f.ExcludePaths) > 0 || len(f.Filesystems) > 0 || len(f.StorageClasses) > 0 || len(f.ContainerPaths) > 0 {
			continue
		}
		for _, g := range f.Paths {
			for _, k := range []struct {
				suffix string
				kind   globKind
			}{{"/**", globTree}, {"/*", globChild}} {
				if dir, ok := strings.CutSuffix(g, k.suffix); ok && isLiteral(dir) {
					if dir == "" {
						dir = "/"
					}
					b.globs[i] = append(b.globs[i], pglob{dir: dir, kind: k.kind})
					break
				}
			}
		}
	}
	// Operations first, so that the programs skip hooks no rule needs.
	for _, p := range m.Set().Policies {
		for _, r := range p.Spec.Rules {
			b.plan.Ops |= kernelOps(r.Operations)
		}
	}
	return b
}

// globKind is a form of path glob the programs place.
type globKind uint8

const (
	globChild globKind = iota + 1 // DIR/*: the files directly in DIR
	globTree                      // DIR/**: the files anywhere below DIR
)

type pglob struct {
	dir  string
	kind globKind
}

type hereDir struct {
	dev uint32
	ino uint64
}

func isLiteral(g string) bool { return !strings.ContainsAny(g, `*?[\`) }

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// extOK reports whether policy pi selects files with extension e ("": a
// file whose extension no policy names).
func (b *planBuilder) extOK(pi int, e string) bool {
	exts := b.m.Set().Policies[pi].Spec.Files.Extensions
	return len(exts) == 0 || (e != "" && slices.Contains(exts, e))
}

// coversChild reports whether policy pi covers every file directly in dir
// with extension e; anyExt ignores the extension (does it cover some).
func (b *planBuilder) coversChild(pi int, dir, e string, anyExt bool) bool {
	if !anyExt && !b.extOK(pi, e) {
		return false
	}
	for _, g := range b.globs[pi] {
		if (g.kind == globChild && g.dir == dir) || (g.kind == globTree && under(dir, g.dir)) {
			return true
		}
	}
	return false
}

// coversTree reports whether policy pi covers every file anywhere below
// dir (in its subdirectories) with extension e.
func (b *planBuilder) coversTree(pi int, dir, e string, anyExt bool) bool {
	if !anyExt && !b.extOK(pi, e) {
		return false
	}
	for _, g := range b.globs[pi] {
		if g.kind == globTree && under(dir, g.dir) {
			return true
		}
	}
	return false
}

// rule returns the kernel rule for a candidate, adding it on first use.
func (b *planBuilder) rule(c *policy.Candidate) uint32 {
	k := [2]int{c.Policy, c.Rule}
	if id, ok := b.plan.ruleIDs[k]; ok {
		return id
	}
	p := b.m.Set().Policies[c.Policy]
	r := &p.Spec.Rules[c.Rule]
	kr := Rule{Ops: kernelOps(c.Ops), Policy: p.Name, Name: r.Name, Audit: c.Audit}
	switch c.Effect {
	case policy.EffectDeny:
		kr.Effect = keffDeny
	case policy.EffectAudit:
		kr.Effect = keffAudit
	default:
		kr.Effect = keffAllow
	}
	id := uint32(len(b.plan.Rules))
	if s := c.Subjects; s != nil {
		if !policy.EnvironmentMatches(s, &b.env) {
			kr.Ops = 0 // never matches on this host
		}
		if len(s.Executables) > 0 {
			kr.Flags |= kruleExe
			for _, e := range s.Executables {
				fk, ok := b.exe(e)
				b.plan.Exes[e] = fk // the zero key: not installed
				if nk, ok := b.exeName(e); ok && !slices.Contains(b.plan.ExeNames[nk], id) {
					b.plan.ExeNames[nk] = append(b.plan.ExeNames[nk], id)
				}
				if ok {
					b.plan.Subjects = append(b.plan.Subjects, SubjectKey{Rule: id, Kind: ksubjExe, Dev: fk.Dev, Val: fk.Ino})
				}
			}
		}
		if len(s.Scripts) > 0 {
			// By identity, as executables; a script replaced on the host
			// is followed by a new build (the agent watches the paths in
			// Exes), not at the rename in the kernel.
			kr.Flags |= kruleScript
			for _, sc := range s.Scripts {
				fk, ok := b.exe(sc)
				b.plan.Exes[sc] = fk
				if ok {
					b.plan.Subjects = append(b.plan.Subjects, SubjectKey{Rule: id, Kind: ksubjScript, Dev: fk.Dev, Val: fk.Ino})
				}
			}
		}
		if len(s.Users) > 0 {
			kr.Flags |= kruleUID
			for _, u := range s.Users {
				b.plan.Subjects = append(b.plan.Subjects, SubjectKey{Rule: id, Kind: ksubjUID, Val: uint64(u.ID)})
			}
		}
		if len(s.Groups) > 0 {
			kr.Flags |= kruleGID
			for _, g := range s.Groups {
				b.plan.Subjects = append(b.plan.Subjects, SubjectKey{Rule: id, Kind: ksubjGID, Val: uint64(g.ID)})
			}
		}
	}
	b.plan.Rules = append(b.plan.Rules, kr)
	b.plan.ruleIDs[k] = id
	return id
}

// class returns the class of a candidate list, adding it on first use.
func (b *planBuilder) class(cands []policy.Candidate, example string) (uint32, error) {
	if len(cands) > maxClassRules {
		return 0, fmt.Errorf("%s: %d rules can decide for this file; the bpf backend decides with at most %d", example, len(cands), maxClassRules)
	}
	ids := make([]uint32, 0, len(cands))
	enforce := 0
	var key strings.Builder
	for i := range cands {
		id := b.rule(&cands[i])
		ids = append(ids, id)
		if !cands[i].Audit {
			enforce++
		}
		fmt.Fprintf(&key, "%d,", id)
	}
	if id, ok := b.plan.classIDs[key.String()]; ok {
		return id, nil
	}
	id := uint32(len(b.plan.Classes))
	b.plan.Classes = append(b.plan.Classes, Class{Rules: ids, Enforce: enforce, Example: example})
	b.plan.classIDs[key.String()] = id
	return id, nil
}

// sameClass reports whether two candidate lists give the same class.
func sameRules(b *planBuilder, cands []policy.Candidate, cls uint32) bool {
	c := b.plan.Classes[cls]
	if len(c.Rules) != len(cands) {
		return false
	}
	return slices.EqualFunc(c.Rules, cands, func(id uint32, cand policy.Candidate) bool {
		k, ok := b.plan.ruleIDs[[2]int{cand.Policy, cand.Rule}]
		return ok && k == id
	})
}
