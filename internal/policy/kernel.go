package policy

import "slices"

// Candidate is one rule that could decide an operation on a given file,
// as a backend that decides in the kernel needs it: the kernel cannot run
// globs, so user space works out, file by file (or tree by tree), which
// rules cover it and in which order they take precedence, and the kernel
// takes the first of them whose operations and subject match.
type Candidate struct {
	Policy   int // index in Set().Policies (name order)
	Rule     int // index in that policy's Spec.Rules
	Ops      Operation
	Effect   Effect
	Audit    bool      // from a policy in audit mode: it can only record
	Subjects *Subjects // nil: every process
}

// Candidates returns the rules that could decide an operation on the file
// in, in precedence order: the enforcing ones first, each list ordered as
// Decide ranks them (file specificity, subject specificity, effect, policy
// name, rule order). A rule that covers the file through several globs
// appears once, at its best rank. Decide's answer for any subject and
// operation is the first enforcing candidate whose operations include the
// operation and whose subject matches (allow when none does), refined by
// the first matching audit-mode candidate, exactly as Decision describes.
//
// Only the file's host path, filesystem type and storage class are used;
// container paths depend on the process and are not considered.
func (m *Matcher) Candidates(in *Input) []Candidate {
	var ms []match
	add := func(p *cpolicy, fileSpec int32) {
		if !p.fileMatches(in) {
			return
		}
		for i := range p.rules {
			ms = append(ms, match{p: p, r: &p.rules[i], fileSpec: fileSpec})
		}
	}
	if !m.paths.Empty() {
		var buf [16]int32
		for _, id := range m.paths.Match(buf[:0], in.Path) {
			t := m.pathTargets[id]
			add(m.policies[t.policy], t.spec)
		}
	}
	if len(m.byExt) > 0 {
		base := baseName(in.Path)
		var lower [maxExtLen]byte
		for i := 0; i < len(base); i++ {
			if base[i] != '.' || i == 0 {
				continue
			}
			if ext, ok := lowerInto(&lower, base[i+1:]); ok {
				for _, pi := range m.byExt[string(ext)] {
					add(m.policies[pi], 0)
				}
			}
		}
	}
	for _, pi := range m.unanchored {
		add(m.policies[pi], 0)
	}
	slices.SortStableFunc(ms, func(a, b match) int {
		if a.p.audit != b.p.audit {
			if !a.p.audit {
				return -1
			}
			return 1
		}
		if better(&a, &b) {
			return -1
		}
		if better(&b, &a) {
			return 1
		}
		return 0
	})
	out := make([]Candidate, 0, len(ms))
	seen := make(map[*crule]bool, len(ms))
	for _, c := range ms {
		if seen[c.r] {
			continue // the same rule through a less specific glob
		}
		seen[c.r] = true
		out = append(out, Candidate{Policy: int(c.p.idx), Rule: int(c.r.idx), Ops: c.r.ops, Effect: c.r.effect,
			Audit: c.p.audit, Subjects: c.r.subj.src})
	}
	return out
}

// EnvironmentMatches reports whether a subject selector's environment
// part (hypervisor, cloud, ...) holds on a host: it depends on nothing
// else, so a backend deciding in the kernel evaluates it once, at load.
func EnvironmentMatches(s *Subjects, env *Env) bool {
	if s == nil {
		return true
	}
	cs := csubject{src: s}
	return cs.envOK(env)
}
