package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseOperations(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Operation
	}{
		{"open", OpOpen}, {"exec", OpExec}, {"read", OpRead}, {"write", OpWrite}, {"delete", OpDelete},
		{"rename", OpRename}, {"link", OpLink}, {"truncate", OpTruncate}, {"setattr", OpSetattr},
		{"open,write", OpOpen | OpWrite}, {"open, write,truncate", OpOpen | OpWrite | OpTruncate},
	} {
		got, err := ParseOperations(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseOperations(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	// String and ParseOperations are inverses, for every single operation
	// and for all of them at once.
	for _, name := range append(OperationNames(), strings.Join(OperationNames(), ",")) {
		op, err := ParseOperations(name)
		if err != nil || op.String() != name {
			t.Errorf("%q: parsed %v (%v), printed %q", name, op, err, op.String())
		}
	}
	if opAll.String() != "open,exec,read,write,delete,rename,link,truncate,setattr" {
		t.Errorf("opAll = %s", opAll)
	}
	for _, bad := range []string{"", "erase", "open,", "OPEN"} {
		_, err := ParseOperations(bad)
		if err == nil || !strings.Contains(err.Error(), "expected one of open, exec, read, write, delete, rename, link, truncate, setattr") {
			t.Errorf("ParseOperations(%q): err = %v", bad, err)
		}
	}
	if _, err := ParseOperation("renmae"); err == nil || !strings.HasSuffix(err.Error(), `(did you mean "rename"?)`) {
		t.Errorf("typo: %v", err)
	}
}

func TestNewOperationsParseInPolicies(t *testing.T) {
	for _, o := range opNames {
		doc := head + fmt.Sprintf("spec:\n  files: {paths: [/a/**]}\n  rules:\n    - {name: r, operations: [%s], effect: deny}\n", o.name)
		set, err := loadString(t, doc)
		if err != nil {
			t.Errorf("%s: %v", o.name, err)
			continue
		}
		if got := set.Policies[0].Spec.Rules[0].Operations; got != o.op {
			t.Errorf("%s: decoded %v", o.name, got)
		}
	}
	set, err := loadString(t, head+"spec:\n  files: {paths: [/a/**]}\n  rules:\n    - {name: r, operations: [write, delete, rename, link, truncate, setattr], effect: deny}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Policies[0].Spec.Rules[0].Operations; got != opAll&^portableOps {
		t.Errorf("all new operations: %v", got)
	}
}

// backendDocs are two files: an enforcing policy using operations only the
// BPF backend mediates, and an audit-mode one whose rules count too.
var backendDocs = []string{
	`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: ledger}
spec:
  files: {paths: ["/srv/ledger/**"]}
  rules:
    - name: clerks-may-open
      operations: [open]
      subjects: {users: [alice]}
      effect: allow
    - name: nobody-writes
      operations: [open, write, truncate]
      effect: deny
    - {name: keep, operations: [delete, rename, link, setattr], effect: deny}
`,
	`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: a-trial}
spec:
  mode: audit
  files: {paths: ["/srv/trial/**"]}
  rules:
    - {name: watch, operations: [exec, delete], effect: audit}
`,
}

func TestUnsupportedOnFanotify(t *testing.T) {
	set, err := loadString(t, backendDocs...)
	if err != nil {
		t.Fatal(err)
	}
	errs := set.Unsupported(FanotifyBackend())
	advice := func(op string) string {
		return fmt.Sprintf(`is not mediated by the fanotify backend (it mediates open, exec, read), so the rule would never see it; use --backend bpf, or drop %q from the rule's operations`, op)
	}
	want := []string{
		`p1.yaml:12:26: spec.rules[1].operations[1]: policy "ledger", rule "nobody-writes": operation "write" ` + advice("write"),
		`p1.yaml:12:33: spec.rules[1].operations[2]: policy "ledger", rule "nobody-writes": operation "truncate" ` + advice("truncate"),
		`p1.yaml:14:33: spec.rules[2].operations[0]: policy "ledger", rule "keep": operation "delete" ` + advice("delete"),
		`p1.yaml:14:41: spec.rules[2].operations[1]: policy "ledger", rule "keep": operation "rename" ` + advice("rename"),
		`p1.yaml:14:49: spec.rules[2].operations[2]: policy "ledger", rule "keep": operation "link" ` + advice("link"),
		`p1.yaml:14:55: spec.rules[2].operations[3]: policy "ledger", rule "keep": operation "setattr" ` + advice("setattr"),
		`p2.yaml:8:40: spec.rules[0].operations[1]: policy "a-trial", rule "watch": operation "delete" ` + advice("delete"),
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, e := range errs {
		if e.Error() != want[i] {
			t.Errorf("error %d:\n got %s\nwant %s", i, e, want[i])
		}
		if e.Backend != BackendFanotify {
			t.Errorf("error %d: Backend = %q", i, e.Backend)
		}
	}
	var err2 error = errs
	if !errors.Is(err2, ErrUnsupported) || !errors.Is(err2, ErrInvalid) || !errors.Is(errs[0], ErrUnsupported) {
		t.Errorf("the errors must match ErrUnsupported and ErrInvalid")
	}
	if errors.Is(&Error{Msg: "x"}, ErrUnsupported) {
		t.Errorf("a policy error is not ErrUnsupported")
	}

	if errs := set.Unsupported(BPFBackend()); len(errs) != 0 {
		t.Errorf("bpf mediates every operation: %v", errs)
	}
	for _, b := range Backends() {
		if b.Name == BackendBPF && b.Ops != opAll {
			t.Errorf("bpf mediates %v", b.Ops)
		}
		if got, err := ParseBackend(b.Name); err != nil || got.Name != b.Name || got.Ops != b.Ops {
			t.Errorf("ParseBackend(%q) = %+v, %v", b.Name, got, err)
		}
	}
	if _, err := ParseBackend("ebpf"); err == nil || err.Error() != `unknown backend "ebpf"; expected one of fanotify, bpf` {
		t.Errorf("ParseBackend(ebpf): %v", err)
	}
}

func TestUnsupportedKeepsOldPoliciesLoading(t *testing.T) {
	set, err := LoadPaths([]string{"../../examples"}, LoadOptions{Resolver: examplesResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range Backends() {
		if errs := set.Unsupported(b); len(errs) != 0 {
			t.Errorf("%s: %v", b.Name, errs)
		}
	}
	if len(set.opPos) != 0 {
		t.Errorf("a set with only open, exec and read keeps no operation positions: %v", set.opPos)
	}
}

// examplesResolver resolves every name, as the examples name accounts of
// machines other than this one.
type examplesResolver struct{}

func (examplesResolver) LookupUser(string) (uint32, error)  { return 4242, nil }
func (examplesResolver) LookupGroup(string) (uint32, error) { return 4242, nil }

func TestUnsupportedWithoutPositions(t *testing.T) {
	// A Set not made by Load has no operation positions: the error points
	// at the rule.
	p := &Policy{Name: "hand", Spec: Spec{Rules: []Rule{{Name: "r", Operations: OpOpen | OpWrite, Effect: EffectDeny, Pos: Pos{File: "hand.yaml", Line: 3, Column: 5}}}}}
	errs := (&Set{Policies: []*Policy{p}, Files: []string{"hand.yaml"}}).Unsupported(FanotifyBackend())
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), `hand.yaml:3:5: spec.rules[0].operations: policy "hand", rule "r": operation "write" is not mediated`) {
		t.Fatalf("got %v", errs)
	}
}

func TestUnsupportedRuleChecks(t *testing.T) {
	set, err := loadString(t, head+`spec:
  files: {paths: [/a/**]}
  rules:
    - name: pods
      operations: [open, write]
      subjects:
        kubernetes: {namespaces: [prod]}
      effect: allow
    - {name: others, operations: [open], effect: deny}
`)
	if err != nil {
		t.Fatal(err)
	}
	b := BPFBackend()
	b.Checks = []RuleCheck{func(p *Policy, r *Rule) []Limit {
		if r.Subjects == nil || r.Subjects.Kubernetes == nil {
			return nil
		}
		return []Limit{{Pos: r.Subjects.Kubernetes.Pos, Field: "subjects.kubernetes", What: "a kubernetes selector", Fix: "select the pods by container instead"}}
	}, func(p *Policy, r *Rule) []Limit {
		if r.Name != "others" {
			return nil
		}
		return []Limit{{What: "a rule named others"}}
	}}
	got := set.Unsupported(b)
	want := []string{
		`p1.yaml:10:21: spec.rules[0].subjects.kubernetes: policy "bad", rule "pods": a kubernetes selector cannot be enforced by the bpf backend; select the pods by container instead`,
		`p1.yaml:12:7: spec.rules[1]: policy "bad", rule "others": a rule named others cannot be enforced by the bpf backend; change the rule`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].Error() != want[i] || got[i].Backend != BackendBPF {
			t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// writeDocs are rules on opens and writes, for TestDecideSeveralOperations.
var writeDocs = []string{
	// An old policy: open alone.
	`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: old}
spec:
  files: {paths: ["/srv/old/**"]}
  rules:
    - {name: editor-may-open, operations: [open], subjects: {executables: [/usr/bin/vi]}, effect: allow}
    - {name: nobody-else, operations: [open], effect: deny}
`,
	// Read-only for everyone, except editors who may write.
	`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: read-only}
spec:
  files: {paths: ["/srv/ro/**"]}
  rules:
    - {name: editors-may-write, operations: [write], subjects: {executables: [/usr/bin/vi]}, effect: allow}
    - {name: nobody-writes, operations: [write], effect: deny}
`,
	// Only readers may open; a broad deny of writes does not yield to a
	// more specific allow of opens, nor an allow of writes to a deny of
	// opens.
	`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: mixed}
spec:
  files: {paths: ["/srv/mixed/**"]}
  rules:
    - {name: readers-may-open, operations: [open], subjects: {executables: [/usr/bin/vi, /usr/bin/cat]}, effect: allow}
    - {name: others-may-not-open, operations: [open], effect: deny}
    - {name: git-may-write, operations: [write], subjects: {executables: [/usr/bin/git]}, effect: allow}
    - {name: nobody-writes, operations: [write, truncate], effect: deny}
    - {name: watch-truncates, operations: [truncate], subjects: {executables: [/usr/bin/vi]}, effect: audit}
`,
	// A trial of a write ban, in audit mode, over the old policy's files.
	`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: trial}
spec:
  mode: audit
  files: {paths: ["/srv/old/**"]}
  rules:
    - {name: no-writes, operations: [write], effect: deny}
`,
}

func TestDecideSeveralOperations(t *testing.T) {
	m := mustMatcher(t, writeDocs...)
	const rw = OpOpen | OpWrite
	cases := []struct {
		name string
		op   Operation
		path string
		exe  string
		want string // verdict by policy/rule, and "+would policy/rule"
	}{
		// The old policy decides a writing open as it decides an open.
		{"old: editor opens", OpOpen, "/srv/old/a", "/usr/bin/vi", "allow by old/editor-may-open"},
		{"old: editor writes", rw, "/srv/old/a", "/usr/bin/vi", "allow by old/editor-may-open +would trial/no-writes"},
		{"old: write alone is a writing open", OpWrite, "/srv/old/a", "/usr/bin/vi", "allow by old/editor-may-open +would trial/no-writes"},
		{"old: others may not write", rw, "/srv/old/a", "/usr/bin/cat", "deny by old/nobody-else"},
		{"old: others may not read", OpOpen, "/srv/old/a", "/usr/bin/cat", "deny by old/nobody-else"},
		// Read-only: opens are not decided by write rules.
		{"ro: anyone reads", OpOpen, "/srv/ro/a", "/usr/bin/cat", "allow by -"},
		{"ro: nobody writes", rw, "/srv/ro/a", "/usr/bin/cat", "deny by read-only/nobody-writes"},
		{"ro: editors write", rw, "/srv/ro/a", "/usr/bin/vi", "allow by read-only/editors-may-write"},
		{"ro: delete has no rule", OpDelete, "/srv/ro/a", "/usr/bin/cat", "allow by -"},
		// Mixed: the open is allowed to vi, the write is denied to it; the
		// more specific allow of opens does not let vi write.
		{"mixed: vi reads", OpOpen, "/srv/mixed/a", "/usr/bin/vi", "allow by mixed/readers-may-open"},
		{"mixed: vi may not write", rw, "/srv/mixed/a", "/usr/bin/vi", "deny by mixed/nobody-writes"},
		{"mixed: git may write but not open", rw, "/srv/mixed/a", "/usr/bin/git", "deny by mixed/others-may-not-open"},
		{"mixed: git's truncate(2)", OpTruncate, "/srv/mixed/a", "/usr/bin/git", "deny by mixed/nobody-writes"},
		{"mixed: vi's O_TRUNC open", rw | OpTruncate, "/srv/mixed/a", "/usr/bin/vi", "deny by mixed/nobody-writes"},
		{"mixed: cat reads", OpOpen | OpRead, "/srv/mixed/a", "/usr/bin/cat", "allow by mixed/readers-may-open"},
		{"uncovered", rw | OpTruncate, "/srv/other/a", "/usr/bin/vi", "allow by -"},
	}
	for _, c := range cases {
		in := Input{Op: c.op, Path: c.path, Subject: Subject{Exe: c.exe}}
		d := m.Decide(&in)
		got := fmt.Sprintf("%s by %s", d.Verdict, orDash(d.Policy, d.Rule))
		if d.WouldDeny {
			got += " +would " + d.WouldPolicy + "/" + d.WouldRule
		}
		if got != c.want {
			t.Errorf("%s (%s): got %q, want %q", c.name, c.op, got, c.want)
		}
		ex := m.Explain(&in)
		if ex.Decision != d {
			t.Errorf("%s: Explain %+v, Decide %+v", c.name, ex.Decision, d)
		}
	}
	// The audit effect is recorded when it decides one of the operations.
	in := Input{Op: OpOpen | OpTruncate, Path: "/srv/mixed/a", Subject: Subject{Exe: "/usr/bin/cat"}}
	if d := m.Decide(&in); d.Verdict != Deny || d.Rule != "nobody-writes" || !d.Audit {
		t.Errorf("cat's O_RDONLY|O_TRUNC open: %+v", d)
	}
}

func orDash(p, r string) string {
	if r == "" {
		return "-"
	}
	return p + "/" + r
}

func TestExplainSeveralOperations(t *testing.T) {
	m := mustMatcher(t, writeDocs...)
	ex := m.Explain(&Input{Op: OpOpen | OpWrite, Path: "/srv/mixed/a", Subject: Subject{Exe: "/usr/bin/vi"}})
	if ex.Decision.Verdict != Deny || ex.Operation != "write" || len(ex.Operations) != 2 {
		t.Fatalf("%+v", ex)
	}
	open, write := ex.Operations[0], ex.Operations[1]
	if open.Operation != "open" || open.Decision.Verdict != Allow || open.Decision.Rule != "readers-may-open" ||
		strings.Join(open.Order, " ") != "mixed/readers-may-open mixed/others-may-not-open" {
		t.Errorf("open: %+v", open)
	}
	if write.Operation != "write" || write.Decision.Verdict != Deny || write.Decision.Rule != "nobody-writes" ||
		strings.Join(write.Order, " ") != "mixed/nobody-writes" || strings.Join(ex.Order, " ") != "mixed/nobody-writes" {
		t.Errorf("write: %+v", write)
	}
	var mixed PolicyTrace
	for _, p := range ex.Policies {
		if p.Policy == "mixed" {
			mixed = p
		}
	}
	got := map[string]string{}
	for _, r := range mixed.Rules {
		got[r.Rule] = fmt.Sprintf("%v %d %v %v", r.Matched, r.Rank, r.Decided, r.Ranks)
	}
	want := map[string]string{
		"readers-may-open":    "true 1 false [{open 1 true}]",
		"others-may-not-open": "true 2 false [{open 2 false}]",
		"git-may-write":       "false 0 false []",
		"nobody-writes":       "true 1 true [{write 1 true}]",
		"watch-truncates":     "false 0 false []",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s, want %s", k, got[k], w)
		}
	}
	// One operation: explained as before, without per-operation parts.
	ex = m.Explain(&Input{Op: OpOpen, Path: "/srv/mixed/a", Subject: Subject{Exe: "/usr/bin/vi"}})
	if ex.Operation != "" || ex.Operations != nil || strings.Join(ex.Order, " ") != "mixed/readers-may-open mixed/others-may-not-open" {
		t.Errorf("one operation: %+v", ex)
	}
}

// TestOldPoliciesDecideAlikeOnEveryBackend: with rules naming only open,
// exec and read, the BPF backend's writing open (open and write) and
// O_TRUNC open (open, write, truncate) decide as fanotify's open.
func TestOldPoliciesDecideAlikeOnEveryBackend(t *testing.T) {
	m := synthMatcher(t, 1000)
	r := rand.New(rand.NewPCG(5, 5))
	for _, p := range synthCorpus(2000, 4) {
		in := synthInput(r, p)
		in.Op = OpOpen
		want := m.Decide(in)
		for _, op := range []Operation{OpOpen | OpWrite, OpWrite, OpOpen | OpWrite | OpTruncate} {
			in2 := *in
			in2.Op = op
			if got := m.Decide(&in2); got != want {
				t.Fatalf("%s %s: %+v, as an open %+v", op, p, got, want)
			}
		}
	}
}

// TestExplainAgreesWithDecideOnSeveralOperations is TestExplainAgreesWithDecide
// for rules and inputs of the new operations.
func TestExplainAgreesWithDecideOnSeveralOperations(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var docs []string
	exes := []string{"/usr/bin/vi", "/usr/bin/cat", "/usr/bin/git"}
	effects := []string{"allow", "deny", "audit"}
	for i := range 12 {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: p%02d}\nspec:\n", i)
		if i%4 == 3 {
			b.WriteString("  mode: audit\n")
		}
		fmt.Fprintf(&b, "  files: {paths: [%q]}\n  rules:\n", []string{"/srv/**", "/srv/a/**", "/srv/a/b/**"}[i%3])
		for j := range 4 {
			var ops []string
			for _, o := range opNames {
				if r.IntN(4) == 0 {
					ops = append(ops, o.name)
				}
			}
			if len(ops) == 0 {
				ops = []string{"write"}
			}
			// Every rule of a policy selects other subjects, so none
			// shadows another (which Load rejects).
			subj := ""
			if j > 0 {
				subj = fmt.Sprintf(", subjects: {executables: [%s]}", exes[j-1])
			}
			fmt.Fprintf(&b, "    - {name: r%d, operations: [%s]%s, effect: %s}\n", j, strings.Join(ops, ", "), subj, effects[r.IntN(3)])
		}
		docs = append(docs, b.String())
	}
	srcs := make([]Source, len(docs))
	for i, d := range docs {
		srcs[i] = Source{Name: fmt.Sprintf("p%d.yaml", i), Data: []byte(d)}
	}
	set, err := Load(srcs, LoadOptions{Resolver: testAccounts})
	if err != nil {
		t.Fatalf("random policies: %v", err)
	}
	m := Compile(set, CompileOptions{})
	var denials, wouldDenials, audits int
	for range 3000 {
		in := Input{Op: Operation(r.IntN(int(opAll) + 1)), Path: []string{"/srv/x", "/srv/a/x", "/srv/a/b/x", "/tmp/x"}[r.IntN(4)],
			Subject: Subject{Exe: exes[r.IntN(len(exes))]}}
		in2 := in
		d, ex := m.Decide(&in), m.Explain(&in2)
		if d != ex.Decision {
			t.Fatalf("%s %s by %s:\nDecide  %+v\nExplain %+v", in.Op, in.Path, in.Subject.Exe, d, ex.Decision)
		}
		// Denied exactly when some operation of the input is denied alone.
		denied := false
		in.Op.decided().each(func(op Operation) {
			one := in
			one.Op = op
			if m.Decide(&one).Verdict == Deny {
				denied = true
			}
		})
		if denied != (d.Verdict == Deny) {
			t.Fatalf("%s %s by %s: %s, but denied as one operation: %v", in.Op, in.Path, in.Subject.Exe, d.Verdict, denied)
		}
		if d.Verdict == Deny {
			denials++
		}
		if d.WouldDeny {
			wouldDenials++
		}
		if d.Audit && d.Effect == EffectAudit {
			audits++
		}
	}
	if denials < 300 || denials > 2700 || wouldDenials < 30 || audits < 10 {
		t.Fatalf("not a useful mix: %d denials, %d would-denials, %d audits of 3000", denials, wouldDenials, audits)
	}
}

func TestDecideSeveralOperationsUncoveredDoesNotAllocate(t *testing.T) {
	m := mustMatcher(t, writeDocs...)
	in := &Input{Op: OpOpen | OpWrite | OpTruncate, Path: "/usr/lib/libc.so.6", Subject: Subject{Exe: "/usr/bin/vi"}}
	covered := &Input{Op: OpOpen | OpWrite, Path: "/srv/mixed/a", Subject: Subject{Exe: "/usr/bin/vi"}}
	if n := testing.AllocsPerRun(100, func() { m.Decide(in); m.Decide(covered) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// BenchmarkDecideWritingOpen is BenchmarkDecide's 10,000 rules deciding
// every open as the BPF backend's writing open (open and write).
func BenchmarkDecideWritingOpen(b *testing.B) {
	corpus := synthCorpus(100_000, 1)
	m := synthMatcher(b, 10000)
	r := rand.New(rand.NewPCG(1, 2))
	inputs := make([]*Input, len(corpus))
	for i, p := range corpus {
		inputs[i] = synthInput(r, p)
		inputs[i].Op = OpOpen | OpWrite
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Decide(inputs[i])
		i++
		if i == len(inputs) {
			i = 0
		}
	}
}
