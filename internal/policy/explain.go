package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drmfilter/drmfilter/internal/glob"
)

// Explanation is Decide's answer with the reasons behind it, for `policy
// explain`. It is computed by a slower path that visits every policy and
// rule; tests check that it always agrees with Decide.
type Explanation struct {
	Decision Decision      `json:"-"`
	Policies []PolicyTrace `json:"policies"`
	// Order lists the rules that matched, best first, as "policy/rule":
	// the enforcing ones, then those of audit-mode policies. For an input
	// of several operations, the order for the operation that decided
	// (Operation).
	Order []string `json:"order"`
	// Operation is the operation whose rule the Decision names, for an
	// input of several operations (the first when no rule decided); empty
	// for an input of one.
	Operation string `json:"operation,omitempty"`
	// Operations explains each operation of an input of several, in
	// order: the event is allowed only if every one is. Empty for an input
	// of one operation.
	Operations []OperationTrace `json:"operations,omitempty"`
}

// OperationTrace is the decision for one operation of an input of several.
type OperationTrace struct {
	Operation string   `json:"operation"`
	Decision  Decision `json:"-"`
	Order     []string `json:"order"` // as Explanation.Order, for this operation
}

// PolicyTrace says whether a policy covers the file and what its rules did.
type PolicyTrace struct {
	Policy          string      `json:"policy"`
	Mode            string      `json:"mode"`
	Source          Pos         `json:"source"`
	Covers          bool        `json:"covers"`
	Reason          string      `json:"reason"`
	FileSpecificity int         `json:"fileSpecificity"`
	Rules           []RuleTrace `json:"rules,omitempty"`
}

// RuleTrace says whether a rule matched, and why or why not.
type RuleTrace struct {
	Rule               string `json:"rule"`
	Effect             string `json:"effect"`
	Operations         string `json:"operations"`
	Source             Pos    `json:"source"`
	Matched            bool   `json:"matched"`
	Reason             string `json:"reason"`
	SubjectSpecificity int    `json:"subjectSpecificity"`
	// Rank is the rule's place in precedence among the matching rules of
	// policies of the same mode (1 decides); 0 when it did not match. For
	// an input of several operations, its best place among Ranks.
	Rank int `json:"rank,omitempty"`
	// Decided: the Decision names this rule.
	Decided bool `json:"decided,omitempty"`
	// Ranks is the rule's place for each operation of an input of several
	// that it names.
	Ranks []OpRank `json:"ranks,omitempty"`
}

// OpRank is a rule's place in precedence for one operation of an input of
// several operations.
type OpRank struct {
	Operation string `json:"operation"`
	Rank      int    `json:"rank"`
	Decided   bool   `json:"decided,omitempty"` // it decides that operation
}

// Explain decides like Decide and records why.
func (m *Matcher) Explain(in *Input) Explanation {
	var ex Explanation
	ops := in.Op.decided()
	d := decider{m: m, in: in, op: ops}
	var single []Operation
	ops.each(func(op Operation) { single = append(single, op) })
	multi := len(single) > 1
	// Candidates for each operation, enforcing and audit-mode.
	enforce, audit := make([][]match, len(single)), make([][]match, len(single))
	where := map[*crule][2]int{} // rule -> index of its policy and rule trace
	for _, p := range m.policies {
		pt := PolicyTrace{Policy: p.src.Name, Mode: "enforce", Source: p.src.Pos}
		if p.audit {
			pt.Mode = "audit"
		}
		spec, reason, ok := m.fileReason(p, in)
		pt.Covers, pt.Reason, pt.FileSpecificity = ok, reason, int(spec)
		if ok {
			d.covered = true
			for i := range p.rules {
				r := &p.rules[i]
				rt := RuleTrace{Rule: p.ruleName(r), Effect: r.effect.String(), Operations: r.ops.String(), Source: p.src.Spec.Rules[r.idx].Pos, SubjectSpecificity: int(r.spec)}
				if r.ops&ops == 0 {
					rt.Reason = fmt.Sprintf("operation %s is not one of %s", ops, r.ops)
				} else if why, ok := r.subjectReason(&d); !ok {
					rt.Reason = why
				} else {
					rt.Matched, rt.Reason = true, why
					cand := match{p: p, r: r, fileSpec: spec}
					for k, op := range single {
						if r.ops&op == 0 {
							continue
						}
						if p.audit {
							audit[k] = append(audit[k], cand)
						} else {
							enforce[k] = append(enforce[k], cand)
						}
					}
				}
				where[r] = [2]int{len(ex.Policies), len(pt.Rules)}
				pt.Rules = append(pt.Rules, rt)
			}
		}
		ex.Policies = append(ex.Policies, pt)
	}
	trace := func(r *crule) *RuleTrace {
		w := where[r]
		return &ex.Policies[w[0]].Rules[w[1]]
	}
	// rank orders one operation's candidates, records their places, and
	// returns the one that decides.
	rank := func(op Operation, ms []match, order *[]string) match {
		slices.SortStableFunc(ms, func(a, b match) int {
			if better(&a, &b) {
				return -1
			}
			if better(&b, &a) {
				return 1
			}
			return 0
		})
		for i, c := range ms {
			t := trace(c.r)
			if !multi {
				t.Rank = i + 1
			} else {
				t.Ranks = append(t.Ranks, OpRank{Operation: op.String(), Rank: i + 1, Decided: i == 0})
				if t.Rank == 0 || i+1 < t.Rank {
					t.Rank = i + 1
				}
			}
			*order = append(*order, c.p.src.Name+"/"+c.p.ruleName(c.r))
		}
		if len(ms) == 0 {
			return match{}
		}
		return ms[0]
	}
	var best, bestAudit match
	bestOp, bestAuditOp := -1, -1
	for k, op := range single {
		var ot OperationTrace
		ot.Operation = op.String()
		if multi {
			ot.Order = []string{}
		}
		e := rank(op, enforce[k], &ot.Order)
		a := rank(op, audit[k], &ot.Order)
		if s := stronger(best, e); s != best {
			best, bestOp = s, k
		}
		if s := stronger(bestAudit, a); s != bestAudit {
			bestAudit, bestAuditOp = s, k
		}
		d.enforce, d.audit = e, a
		ot.Decision = d.result()
		ex.Operations = append(ex.Operations, ot)
	}
	d.enforce, d.audit = best, bestAudit
	if best.r != nil {
		trace(best.r).Decided = true
	}
	if bestAudit.r != nil {
		trace(bestAudit.r).Decided = true
	}
	ex.Decision = d.result()
	k := max(bestOp, 0)
	if bestOp < 0 && bestAuditOp >= 0 {
		k = bestAuditOp
	}
	if multi {
		ex.Operation, ex.Order = ex.Operations[k].Operation, ex.Operations[k].Order
	} else {
		if len(ex.Operations) == 1 {
			ex.Order = ex.Operations[0].Order
		}
		ex.Operations = nil
	}
	return ex
}

// fileReason tells whether p covers the file, and with what specificity.
func (m *Matcher) fileReason(p *cpolicy, in *Input) (int32, string, bool) {
	files := &p.src.Spec.Files
	var why []string
	spec := int32(-1)
	if p.hasPaths {
		best := ""
		// The Matcher keeps path globs only in its tries: compile them again.
		for _, g := range files.Paths {
			if pat := glob.MustCompile(g); pat.Match(in.Path) && int32(pat.Specificity()) > spec {
				spec, best = int32(pat.Specificity()), pat.String()
			}
		}
		for _, g := range files.ContainerPaths {
			if pat := glob.MustCompile(g); in.ContainerPath != "" && pat.Match(in.ContainerPath) && int32(pat.Specificity()) > spec {
				spec, best = int32(pat.Specificity()), "container path "+pat.String()
			}
		}
		if spec < 0 {
			all := append(append([]string{}, files.Paths...), files.ContainerPaths...)
			return 0, fmt.Sprintf("path matches none of %s", quoteList(all)), false
		}
		why = append(why, fmt.Sprintf("path matches %q", best))
	} else {
		spec = 0
	}
	if len(files.Extensions) > 0 {
		if !extIn(in.Path, files.Extensions) && (in.ContainerPath == "" || !extIn(in.ContainerPath, files.Extensions)) {
			return 0, fmt.Sprintf("extension is not one of %s", quoteList(files.Extensions)), false
		}
		why = append(why, "extension is listed")
	}
	if !p.fsOK(in.FSType) {
		return 0, fmt.Sprintf("filesystem %q is not one of %s", orUnknown(in.FSType), quoteList(files.Filesystems)), false
	}
	if len(files.Filesystems) > 0 {
		why = append(why, fmt.Sprintf("filesystem %q", in.FSType))
	}
	if !p.classOK(in.StorageClass) {
		return 0, fmt.Sprintf("storage class %q is not one of %s", orUnknown(in.StorageClass), quoteList(files.StorageClasses)), false
	}
	if len(files.StorageClasses) > 0 {
		why = append(why, fmt.Sprintf("storage class %q", in.StorageClass))
	}
	for _, g := range files.ExcludePaths {
		if ex := glob.MustCompile(g); ex.Match(in.Path) || (in.ContainerPath != "" && ex.Match(in.ContainerPath)) {
			return 0, fmt.Sprintf("excluded by %q", ex), false
		}
	}
	return spec, strings.Join(why, ", "), true
}

func extIn(path string, exts []string) bool {
	base := strings.ToLower(baseName(path))
	for i := 1; i < len(base); i++ {
		if base[i] == '.' && slices.Contains(exts, base[i+1:]) {
			return true
		}
	}
	return false
}

// subjectReason is the explaining twin of csubject.matches.
func (r *crule) subjectReason(d *decider) (string, bool) {
	s := &r.subj
	if s.src == nil {
		return "no subject conditions: every process", true
	}
	in := &d.in.Subject
	src := s.src
	var why []string
	if len(src.Executables) > 0 {
		if !s.exeOK(in.Exe) {
			return fmt.Sprintf("executable %q is not one of %s", in.Exe, quoteList(src.Executables)), false
		}
		why = append(why, fmt.Sprintf("executable %q", in.Exe))
	}
	if len(src.ExecutableHashes) > 0 {
		if !s.hashOK(d) {
			if !in.HasSHA256 {
				return "executable hash unknown (the file could not be hashed)", false
			}
			return fmt.Sprintf("executable sha256:%x is not listed", in.ExeSHA256), false
		}
		why = append(why, fmt.Sprintf("executable sha256:%x", in.ExeSHA256))
	}
	if len(src.Scripts) > 0 {
		if !s.scriptOK(in) {
			if in.Script == "" {
				return fmt.Sprintf("not running a script (its exec started no interpreter for one of %s)", quoteList(src.Scripts)), false
			}
			return fmt.Sprintf("script %q is not one of %s", in.Script, quoteList(src.Scripts)), false
		}
		why = append(why, fmt.Sprintf("script %q", in.Script))
	}
	if len(src.Users) > 0 {
		if !s.userOK(in) {
			return fmt.Sprintf("uid %d is not one of %s", in.UID, idList(src.Users)), false
		}
		why = append(why, fmt.Sprintf("uid %d", in.UID))
	}
	if len(src.Groups) > 0 {
		if !s.groupOK(in) {
			return fmt.Sprintf("gid %d and groups %v are not in %s", in.GID, in.Groups, idList(src.Groups)), false
		}
		why = append(why, "group")
	}
	if src.Container != nil {
		if !s.containerOK(in) {
			if !in.Container.InContainer() {
				return "the process is not in a container", false
			}
			if src.Container.Scope == ContainerNoneScope {
				return fmt.Sprintf("the process is in container %s, the rule is for host processes", shortID(in.Container.ID)), false
			}
			return fmt.Sprintf("container %s (%s) is not selected", shortID(in.Container.ID), orUnknown(in.Container.Runtime)), false
		}
		if in.Container.InContainer() {
			why = append(why, fmt.Sprintf("container %s", shortID(in.Container.ID)))
		} else {
			why = append(why, "host process")
		}
	}
	if src.Kubernetes != nil {
		if !s.kubeOK(in) {
			if in.Pod == nil {
				return "the process is not in a known Kubernetes pod", false
			}
			return fmt.Sprintf("pod %s/%s is not selected", in.Pod.Namespace, in.Pod.Name), false
		}
		why = append(why, fmt.Sprintf("pod %s/%s", in.Pod.Namespace, in.Pod.Name))
	}
	if src.Environment != nil {
		if !s.envOK(&d.in.Env) {
			return fmt.Sprintf("environment (hypervisor %q, cloud %q, in container %v) is not selected", orNone(d.in.Env.Hypervisor), orNone(d.in.Env.Cloud), d.in.Env.InContainer), false
		}
		why = append(why, "environment")
	}
	return strings.Join(why, ", "), true
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func idList(refs []IDRef) string {
	var xs []string
	for _, r := range refs {
		if r.Name == fmt.Sprint(r.ID) {
			xs = append(xs, r.Name)
		} else {
			xs = append(xs, fmt.Sprintf("%s(%d)", r.Name, r.ID))
		}
	}
	return "[" + strings.Join(xs, ", ") + "]"
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	if id == "" {
		return "(unknown id)"
	}
	return id
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
