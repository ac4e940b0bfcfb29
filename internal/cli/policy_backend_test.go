package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

// ledgerDoc names operations only the bpf backend mediates.
const ledgerDoc = `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: ledger}
spec:
  files: {paths: ["/srv/ledger/**"]}
  rules:
    - {name: readers, operations: [open], subjects: {executables: [/usr/bin/vi, /usr/bin/cat]}, effect: allow}
    - {name: others, operations: [open], effect: deny}
    - {name: git-writes, operations: [write], subjects: {executables: [/usr/bin/git]}, effect: allow}
    - {name: nobody-writes, operations: [write, truncate], effect: deny}
    - {name: keep, operations: [delete, rename, link, setattr], effect: deny}
`

func writePolicy(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ledger.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCheckBackend(t *testing.T) {
	p := writePolicy(t, ledgerDoc)
	advice := `is not mediated by the fanotify backend (it mediates open, exec, read), so the rule would never see it; use --backend bpf, or drop `
	wantErrs := []string{
		p + `:9:39: spec.rules[2].operations[0]: policy "ledger", rule "git-writes": operation "write" ` + advice + `"write" from the rule's operations`,
		p + `:10:42: spec.rules[3].operations[0]: policy "ledger", rule "nobody-writes": operation "write" ` + advice,
		p + `:10:49: spec.rules[3].operations[1]: policy "ledger", rule "nobody-writes": operation "truncate" ` + advice,
		p + `:11:33: spec.rules[4].operations[0]: policy "ledger", rule "keep": operation "delete" ` + advice,
		p + `:11:41: spec.rules[4].operations[1]: policy "ledger", rule "keep": operation "rename" ` + advice,
		p + `:11:49: spec.rules[4].operations[2]: policy "ledger", rule "keep": operation "link" ` + advice,
		p + `:11:55: spec.rules[4].operations[3]: policy "ledger", rule "keep": operation "setattr" ` + advice,
		"7 problem(s) found: the fanotify backend cannot enforce these policies; no policy was loaded",
	}
	// fanotify is the default, and what auto chooses where BPF LSM
	// programs do not run (it says so first).
	setProbe(t, bpflsm.Availability{Reason: "probe said no"})
	for _, args := range [][]string{{}, {"--backend", "fanotify"}, {"--backend", "auto"}} {
		code, out, errOut := run(t, append(append([]string{"policy", "check"}, args...), p)...)
		if code != exitcode.Failure || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
		if len(args) > 0 && args[1] == "auto" {
			first, rest, _ := strings.Cut(errOut, "\n")
			if want := "backend auto: checking against fanotify: BPF LSM is not available: probe said no"; first != want {
				t.Errorf("auto: first line %q, want %q", first, want)
			}
			errOut = rest
		}
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if len(lines) != len(wantErrs) {
			t.Errorf("%v: stderr:\n%s", args, errOut)
			continue
		}
		for i, w := range wantErrs {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("%v: line %d:\n got %s\nwant %s", args, i, lines[i], w)
			}
		}
	}

	code, out, errOut := run(t, "policy", "check", "--backend", "bpf", p)
	if code != exitcode.OK || !strings.Contains(out, "ok  ledger") || !strings.Contains(out, "1 policies, 5 rules, hash sha256:") {
		t.Fatalf("bpf: exit %d\n%s%s", code, out, errOut)
	}
	// Old policies pass on fanotify; on bpf those that use only what the
	// programs decide pass, and the others are refused naming what.
	if code, _, errOut := run(t, "policy", "check", "--backend", "fanotify", examplesDir); code != exitcode.OK {
		t.Errorf("examples on fanotify: exit %d\n%s", code, errOut)
	}
	for _, c := range []struct{ file, refused string }{
		{"demo.yaml", ""}, {"finance-docs.yaml", ""}, {"hr-audit.yaml", ""},
		{"container-secrets.yaml", "a container selector"},
		{"kubernetes-secrets.yaml", "a Kubernetes selector"},
		{"source-code.yaml", "an executables glob"},
	} {
		code, _, errOut := run(t, "policy", "check", "--backend", "bpf", filepath.Join(examplesDir, c.file))
		switch {
		case c.refused == "" && code != exitcode.OK:
			t.Errorf("%s on bpf: exit %d\n%s", c.file, code, errOut)
		case c.refused != "" && (code == exitcode.OK || !strings.Contains(errOut, c.refused) || !strings.Contains(errOut, "--backend fanotify")):
			t.Errorf("%s on bpf: exit %d, want a refusal naming %q and the way out:\n%s", c.file, code, c.refused, errOut)
		}
	}

	code, out, _ = run(t, "policy", "check", "-o", "json", p)
	var r struct {
		Valid   bool
		Backend string
		Errors  []struct {
			Line, Column        int
			Field, Msg, Backend string
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitcode.Failure {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if r.Valid || r.Backend != "fanotify" || len(r.Errors) != 7 || r.Errors[0].Line != 9 || r.Errors[0].Column != 39 ||
		r.Errors[0].Field != "spec.rules[2].operations[0]" || r.Errors[0].Backend != "fanotify" {
		t.Fatalf("json: %+v", r)
	}
	code, out, _ = run(t, "policy", "check", "-o", "json", "--backend", "bpf", p)
	if code != exitcode.OK || !strings.Contains(out, `"backend": "bpf"`) || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("json bpf: exit %d\n%s", code, out)
	}

	code, _, errOut = run(t, "policy", "check", "--backend", "ebpf", p)
	if code != exitcode.Usage || !strings.Contains(errOut, `--backend: unknown backend "ebpf"; expected one of fanotify, bpf, or auto`) {
		t.Fatalf("unknown backend: exit %d, %q", code, errOut)
	}
}

// setProbe makes --backend auto see a instead of this machine's kernel.
func setProbe(t *testing.T, a bpflsm.Availability) {
	t.Helper()
	old := probeBackend
	probeBackend = func() bpflsm.Availability { return a }
	t.Cleanup(func() { probeBackend = old })
}

// containerDoc selects files by their paths in containers, which the bpf
// backend does not decide yet.
const containerDoc = `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: in-containers}
spec:
  files: {containerPaths: ["/run/secrets/**"]}
  rules:
    - {name: nobody, operations: [open], subjects: {container: any}, effect: deny}
`

// --backend auto checks against the backend the agent would choose here,
// and says which and why: on standard error, or in the JSON.
func TestPolicyCheckAuto(t *testing.T) {
	ledger := writePolicy(t, ledgerDoc)
	containers := writePolicy(t, containerDoc)
	yes := bpflsm.Availability{OK: true, Reason: "probe said yes"}
	no := bpflsm.Availability{Reason: "probe said no"}
	for _, c := range []struct {
		name   string
		probe  bpflsm.Availability
		policy string
		code   int
		first  string // stderr's first line
	}{
		{"available", yes, ledger, exitcode.OK, "backend auto: checking against bpf: probe said yes"},
		{"not available", no, ledger, exitcode.Failure, "backend auto: checking against fanotify: BPF LSM is not available: probe said no"},
		{"not available, fanotify enough", no, containers, exitcode.OK, "backend auto: checking against fanotify: BPF LSM is not available: probe said no"},
		{"available, policy beyond bpf", yes, containers, exitcode.OK, "backend auto: checking against fanotify: BPF LSM is available, but the policies use what the bpf backend does not decide yet: " + containers + ":5:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setProbe(t, c.probe)
			code, out, errOut := run(t, "policy", "check", "--backend", "auto", c.policy)
			first, _, _ := strings.Cut(errOut, "\n")
			if code != c.code || !strings.HasPrefix(first, c.first) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant its first line to start with %q; stdout:\n%s", code, c.code, errOut, c.first, out)
			}
			if c.code == exitcode.OK && !strings.Contains(out, "1 policies, ") {
				t.Errorf("stdout:\n%s", out)
			}

			code, out, errOut = run(t, "policy", "check", "--backend", "auto", "-o", "json", c.policy)
			var r struct {
				Valid         bool
				Backend       string
				BackendReason string `json:"backend_reason"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil || code != c.code || errOut != "" {
				t.Fatalf("json: exit %d, %v, stderr %q\n%s", code, err, errOut, out)
			}
			wantBackend, wantWhy, _ := strings.Cut(strings.TrimPrefix(c.first, "backend auto: checking against "), ": ")
			if r.Valid != (c.code == exitcode.OK) || r.Backend != wantBackend || !strings.HasPrefix(r.BackendReason, wantWhy) {
				t.Errorf("json: %+v, want backend %s because %q", r, wantBackend, wantWhy)
			}
		})
	}

	// This machine's own answer: bpf only where the kernel runs BPF LSM
	// programs (not on the CI hosts, whose kernel refuses them, nor for
	// users other than root, who cannot load them).
	t.Run("this machine", func(t *testing.T) {
		a := probeBPF()
		want := "backend auto: checking against fanotify: BPF LSM is not available: " + a.Reason
		if a.OK {
			want = "backend auto: checking against bpf: " + a.Reason
		}
		_, _, errOut := run(t, "policy", "check", "--backend", "auto", ledger)
		if first, _, _ := strings.Cut(errOut, "\n"); first != want {
			t.Errorf("stderr's first line %q, want %q (probe: %+v)", first, want, a)
		}
	})
}

func TestPolicyExplainNewOperations(t *testing.T) {
	p := writePolicy(t, ledgerDoc)
	cases := []struct {
		op, exe string
		want    []string
		code    int
	}{
		{"open", "/usr/bin/vi", []string{"Decision: ALLOW", "Decided by rule ledger/readers (allow)", "match #1:"}, exitcode.OK},
		// A writing open is an open and a write, and must be allowed as both.
		{"open,write", "/usr/bin/vi", []string{"Decision: DENY", "Decided by rule ledger/nobody-writes (deny) at " + p + ":10:7.",
			"It is allowed only if allowed as each of its operations:", "open     allow by ledger/readers (allow)",
			"write    deny by ledger/nobody-writes (deny)", "match open #1:", "<= decides open", "match write #1:"}, exitcode.Denied},
		{"write", "/usr/bin/vi", []string{"Decision: DENY", "open     allow by ledger/readers", "write    deny by ledger/nobody-writes"}, exitcode.Denied},
		{"open,write", "/usr/bin/git", []string{"Decision: DENY", "Decided by rule ledger/others (deny)", "write    allow by ledger/git-writes (allow)"}, exitcode.Denied},
		{"delete", "/usr/bin/vi", []string{"Decision: DENY", "Decided by rule ledger/keep (deny)"}, exitcode.Denied},
		{"rename", "/usr/bin/vi", []string{"Decision: DENY", "ledger/keep"}, exitcode.Denied},
		{"link", "/usr/bin/vi", []string{"Decision: DENY", "ledger/keep"}, exitcode.Denied},
		{"setattr", "/usr/bin/vi", []string{"Decision: DENY", "ledger/keep"}, exitcode.Denied},
		{"truncate", "/usr/bin/git", []string{"Decision: DENY", "ledger/nobody-writes", "operation truncate is not one of write"}, exitcode.Denied},
		{"exec", "/usr/bin/vi", []string{"Decision: ALLOW", "Covered, but no enforcing rule matches"}, exitcode.OK},
	}
	for _, c := range cases {
		code, out, errOut := run(t, "policy", "explain", "--exit-code", "--policy", p, "--path", "/srv/ledger/a", "--exe", c.exe, "--op", c.op)
		if code != c.code {
			t.Errorf("--op %s by %s: exit %d, want %d; stderr %s", c.op, c.exe, code, c.code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("--op %s by %s: output lacks %q:\n%s", c.op, c.exe, w, out)
			}
		}
	}

	code, out, errOut := run(t, "policy", "explain", "-o", "json", "--policy", p, "--path", "/srv/ledger/a", "--exe", "/usr/bin/vi", "--op", "open,write")
	if code != exitcode.OK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var r struct {
		Decision   struct{ Verdict, Rule string }
		Input      struct{ Operation string }
		Order      []string
		Operation  string
		Operations []struct {
			Operation string
			Decision  struct{ Verdict, Rule string }
			Order     []string
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Decision.Verdict != "deny" || r.Decision.Rule != "nobody-writes" || r.Input.Operation != "open,write" || r.Operation != "write" ||
		len(r.Operations) != 2 || r.Operations[0].Operation != "open" || r.Operations[0].Decision.Verdict != "allow" ||
		strings.Join(r.Operations[0].Order, " ") != "ledger/readers ledger/others" || strings.Join(r.Order, " ") != "ledger/nobody-writes" {
		t.Fatalf("json: %+v", r)
	}
}
