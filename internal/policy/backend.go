package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Backend is an enforcement backend as the policy language sees it: the
// operations it mediates and what else it cannot enforce. A policy set is
// only loaded for a backend that can enforce every rule of it, audit rules
// and audit-mode policies included (an audit rule on an operation the
// backend never sees would silently never record): Set.Unsupported says
// what stands in the way.
type Backend struct {
	// Name is how --backend and the errors name it: fanotify or bpf.
	Name string
	// Ops are the operations it mediates.
	Ops Operation
	// Checks are further limits on what it can enforce, such as a subject
	// selector it cannot evaluate in the kernel; each is run on every rule.
	// nil when the operations are its only limit.
	Checks []RuleCheck
}

// Backend names.
const (
	BackendFanotify = "fanotify"
	BackendBPF      = "bpf"
)

// FanotifyBackend is fanotify(7) permission events: open, exec and read.
// It cannot tell an open for writing from one for reading, and sees no
// unlink, rename, link, truncate or attribute change.
func FanotifyBackend() Backend {
	return Backend{Name: BackendFanotify, Ops: OpOpen | OpExec | OpRead, Checks: []RuleCheck{fanotifyScripts}}
}

// fanotifyScripts: a fanotify event names the process, and only its
// command line, which it can rewrite, says what script it runs.
func fanotifyScripts(_ *Policy, r *Rule) []Limit {
	if s := r.Subjects; s != nil && len(s.Scripts) > 0 {
		return []Limit{{Pos: s.Pos, Field: "subjects.scripts", What: "scripts (the process's command line, all fanotify shows, is the process's to rewrite)",
			Fix: "use the bpf backend, or select the interpreter by executables alone"}}
	}
	return nil
}

// BPFBackend is the BPF-LSM backend (internal/bpflsm), which mediates
// every operation. Its limits on other features belong in Checks.
func BPFBackend() Backend {
	return Backend{Name: BackendBPF, Ops: opAll}
}

// Backends returns every backend, in the order errors and usage list them.
func Backends() []Backend { return []Backend{FanotifyBackend(), BPFBackend()} }

// ParseBackend returns the backend named name.
func ParseBackend(name string) (Backend, error) {
	var names []string
	for _, b := range Backends() {
		if b.Name == name {
			return b, nil
		}
		names = append(names, b.Name)
	}
	return Backend{}, fmt.Errorf("unknown backend %q; expected one of %s", name, strings.Join(names, ", "))
}

// A RuleCheck reports every part of rule r, of policy p, that a backend
// cannot enforce, beyond the operations it does not mediate (which
// Unsupported finds from Backend.Ops); nil when there is none.
type RuleCheck func(p *Policy, r *Rule) []Limit

// Limit is one part of a rule that a backend cannot enforce.
type Limit struct {
	Pos   Pos    // where it is written (a selector's Pos); the rule's when zero
	Field string // its field below the rule, such as "subjects.kubernetes"; "" for the rule itself
	What  string // what cannot be enforced, as a noun phrase: "pod label expressions"
	Fix   string // what to do instead; when empty, "change the rule"
}

// opPos is where a rule names an operation outside portableOps.
type opPos struct {
	rule  Pos // the rule's Pos, which tells it from every other rule of its Set
	op    Operation
	index int // in the rule's operations list
	at    Pos
}

// Unsupported returns one error for every operation of every rule that b
// does not mediate, and for every Limit its Checks report, in file order;
// nil when b can enforce the whole set. Each error gives the file, line and
// column, the policy, the rule, the operation (or what else), the backend
// and what to do, and matches ErrUnsupported and ErrInvalid.
//
// The result is an ErrorList: test its length, not whether it is nil as an
// error (a nil ErrorList in an error variable is not a nil error).
func (s *Set) Unsupported(b Backend) ErrorList {
	type key struct {
		rule Pos
		op   Operation
	}
	var where map[key]opPos
	var errs ErrorList
	add := func(pos Pos, field, msg string) {
		errs = append(errs, &Error{File: pos.File, Line: pos.Line, Column: pos.Column, Field: field, Msg: msg, Backend: b.Name})
	}
	for _, p := range s.Policies {
		for i := range p.Spec.Rules {
			r := &p.Spec.Rules[i]
			field := fmt.Sprintf("spec.rules[%d]", i)
			missing := r.Operations &^ b.Ops
			missing.each(func(op Operation) {
				if where == nil {
					where = make(map[key]opPos, len(s.opPos))
					for _, o := range s.opPos {
						where[key{o.rule, o.op}] = o
					}
				}
				pos, f := r.Pos, field+".operations"
				if o, ok := where[key{r.Pos, op}]; ok {
					pos, f = o.at, fmt.Sprintf("%s[%d]", f, o.index)
				}
				add(pos, f, fmt.Sprintf("policy %q, rule %q: operation %q is not mediated by the %s backend (it mediates %s), so the rule would never see it; %s",
					p.Name, r.Name, op, b.Name, strings.ReplaceAll(b.Ops.String(), ",", ", "), opAdvice(op, b)))
			})
			for _, check := range b.Checks {
				for _, l := range check(p, r) {
					pos, f := l.Pos, field
					if pos == (Pos{}) {
						pos = r.Pos
					}
					if l.Field != "" {
						f += "." + l.Field
					}
					fix := cmp.Or(l.Fix, "change the rule")
					add(pos, f, fmt.Sprintf("policy %q, rule %q: %s cannot be enforced by the %s backend; %s", p.Name, r.Name, l.What, b.Name, fix))
				}
			}
		}
	}
	slices.SortStableFunc(errs, func(x, y *Error) int {
		return cmp.Or(cmp.Compare(s.fileIndex(x.File), s.fileIndex(y.File)), cmp.Compare(x.Line, y.Line), cmp.Compare(x.Column, y.Column))
	})
	return errs
}

// opAdvice says what to do about op, which b does not mediate: use a
// backend that does, or drop it.
func opAdvice(op Operation, b Backend) string {
	var others []string
	for _, o := range Backends() {
		if o.Name != b.Name && o.Ops&op != 0 {
			others = append(others, "--backend "+o.Name)
		}
	}
	drop := fmt.Sprintf("drop %q from the rule's operations", op)
	if len(others) == 0 {
		return drop
	}
	return fmt.Sprintf("use %s, or %s", strings.Join(others, " or "), drop)
}

// fileIndex is the place of file in the load order, for sorting errors.
func (s *Set) fileIndex(file string) int {
	if i := slices.Index(s.Files, file); i >= 0 {
		return i
	}
	return len(s.Files)
}
