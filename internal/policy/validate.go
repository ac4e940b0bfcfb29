package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// validateSet checks what needs more than one field: names unique across
// the set, rule names unique in a policy, users and groups that exist, and
// rules that can never match or never decide.
func validateSet(ps []*Policy, res Resolver) ErrorList {
	var errs ErrorList
	add := func(pos Pos, field, format string, args ...any) {
		errs = append(errs, &Error{File: pos.File, Line: pos.Line, Column: pos.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]*Policy{}
	for _, p := range ps {
		if first, dup := names[p.Name]; dup {
			add(p.NamePos, "metadata.name", "duplicate policy name %q (first defined at %s)", p.Name, first.NamePos)
		} else {
			names[p.Name] = p
		}
		validateFiles(&p.Spec.Files, add)
		ruleNames := map[string]int{}
		// Ids are resolved first: a rule's subject key holds them, and
		// rules that differ only by user or group must not compare equal.
		subjectKeys := make([]string, len(p.Spec.Rules))
		for i := range p.Spec.Rules {
			r := &p.Spec.Rules[i]
			if r.Subjects != nil {
				field := fmt.Sprintf("spec.rules[%d]", i)
				resolveIDs(r.Subjects.Users, res.LookupUser, "user", field+".subjects.users", add)
				resolveIDs(r.Subjects.Groups, res.LookupGroup, "group", field+".subjects.groups", add)
			}
			subjectKeys[i] = subjectKey(r.Subjects)
		}
		for i := range p.Spec.Rules {
			r := &p.Spec.Rules[i]
			field := fmt.Sprintf("spec.rules[%d]", i)
			if j, dup := ruleNames[r.Name]; dup {
				add(r.Pos, field+".name", "duplicate rule name %q (also spec.rules[%d])", r.Name, j)
			} else {
				ruleNames[r.Name] = i
			}
			if r.Subjects != nil {
				if why := neverMatches(r.Subjects); why != "" {
					add(r.Subjects.Pos, field+".subjects", "this rule can never match: %s", why)
				}
			}
			for j := 0; j < i; j++ {
				o := &p.Spec.Rules[j]
				if r.Operations&^o.Operations != 0 || subjectKeys[i] != subjectKeys[j] {
					continue
				}
				if r.Operations == o.Operations || severity(r.Effect) <= severity(o.Effect) {
					loser, winner := r, o
					if severity(r.Effect) > severity(o.Effect) {
						loser, winner = o, r
					}
					add(loser.Pos, field, "rule %q can never decide: rule %q selects the same subjects for the same operations and takes precedence (%s beats %s); merge or remove one", loser.Name, winner.Name, winner.Effect, loser.Effect)
					break
				}
			}
		}
	}
	return errs
}

func validateFiles(fs *FileSelector, add func(Pos, string, string, ...any)) {
	for _, ex := range fs.ExcludePaths {
		if ex == "/**" || ex == "/" && len(fs.Paths) == 0 {
			add(fs.Pos, "spec.files.excludePaths", "%q excludes every file, so the policy can never match", ex)
		}
		for _, p := range fs.Paths {
			if p == ex {
				add(fs.Pos, "spec.files.excludePaths", "%q is both a path and an excluded path, so it can never match", ex)
			}
		}
	}
}

func resolveIDs(refs []IDRef, lookup func(string) (uint32, error), what, field string, add func(Pos, string, string, ...any)) {
	for i := range refs {
		r := &refs[i]
		if id, err := strconv.ParseUint(r.Name, 10, 32); err == nil {
			r.ID = uint32(id)
			continue
		}
		id, err := lookup(r.Name)
		if err != nil {
			add(r.Pos, field, "unknown %s %q on this host (%v); use a numeric id to name one that exists only elsewhere", what, r.Name, err)
			continue
		}
		r.ID = id
	}
}

// neverMatches explains why no process can satisfy s, or returns "".
func neverMatches(s *Subjects) string {
	if c := s.Container; c != nil && c.Scope == ContainerNoneScope && s.Kubernetes != nil {
		return "container: none selects host processes, which are never in a Kubernetes pod"
	}
	if e := s.Environment; e != nil {
		if slices.Equal(e.Machines, []string{"physical"}) && len(e.Hypervisors) > 0 {
			return "a physical machine has no hypervisor"
		}
	}
	if k := s.Kubernetes; k != nil && k.PodLabels != nil {
		if why := k.PodLabels.contradiction(); why != "" {
			return why
		}
	}
	return ""
}

// subjectKey is a canonical form of a subject selector, for spotting rules
// that select the same processes.
func subjectKey(s *Subjects) string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	list := func(name string, xs []string) {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		fmt.Fprintf(&b, "%s=%q;", name, xs)
	}
	list("exe", s.Executables)
	list("script", s.Scripts)
	var hs []string
	for _, h := range s.ExecutableHashes {
		hs = append(hs, fmt.Sprintf("%x", h))
	}
	list("hash", hs)
	ids := func(name string, refs []IDRef) {
		var xs []string
		for _, r := range refs {
			xs = append(xs, strconv.FormatUint(uint64(r.ID), 10))
		}
		list(name, xs)
	}
	ids("uid", s.Users)
	ids("gid", s.Groups)
	if c := s.Container; c != nil {
		fmt.Fprintf(&b, "c=%d;", c.Scope)
		list("rt", c.Runtimes)
		list("id", c.IDs)
	}
	if k := s.Kubernetes; k != nil {
		list("ns", k.Namespaces)
		if l := k.PodLabels; l != nil {
			var kv []string
			for k, v := range l.MatchLabels {
				kv = append(kv, k+"="+v)
			}
			list("ml", kv)
			var ex []string
			for _, r := range l.MatchExpressions {
				vs := slices.Clone(r.Values)
				slices.Sort(vs)
				ex = append(ex, fmt.Sprintf("%s %s %q", r.Key, r.Operator, vs))
			}
			list("me", ex)
		}
	}
	if e := s.Environment; e != nil {
		list("m", e.Machines)
		list("h", e.Hypervisors)
		list("cl", e.Clouds)
		if e.InContainer != nil {
			fmt.Fprintf(&b, "ic=%v;", *e.InContainer)
		}
	}
	return b.String()
}
