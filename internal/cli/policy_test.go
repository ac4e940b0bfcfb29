package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/exitcode"
)

// run runs drmfilter in-process and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

const examplesDir = "../../examples"

func TestPolicyCheckAcceptsExamples(t *testing.T) {
	code, out, errOut := run(t, "policy", "check", examplesDir)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"ok  finance-docs", "ok  acme-source", "ok  hr-records-audit", "mode=audit", "ok  payments-secrets", "7 policies, 18 rules, hash sha256:", "ok  demo-secret", "ok  container-secrets"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyCheckRejectsBrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	doc := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata:
  name: broken
spec:
  files:
    paths: ["/srv/x/**"]
  rules:
    - name: r
      operations: [open, erase]
      effect: permit
`
	if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "policy", "check", filepath.Join(examplesDir, "finance-docs.yaml"), bad)
	if code != exitcode.Failure {
		t.Fatalf("exit %d, want %d", code, exitcode.Failure)
	}
	if out != "" {
		t.Errorf("nothing may be reported as ok when the set is rejected, got:\n%s", out)
	}
	for _, want := range []string{
		bad + `:10:26: spec.rules[0].operations[1]: unknown operation "erase"; expected one of open, exec, read, write, delete, rename, link, truncate, setattr`,
		bad + `:11:15: spec.rules[0].effect: unknown effect "permit"; expected one of allow, deny, audit`,
		"2 problem(s) found; no policy was loaded",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	code, out, _ = run(t, "policy", "check", "-o", "json", bad)
	var r struct {
		Valid  bool
		Errors []struct {
			File         string
			Line, Column int
			Field, Msg   string
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitcode.Failure {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if r.Valid || len(r.Errors) != 2 || r.Errors[0].Line != 10 || r.Errors[0].Column != 26 || r.Errors[0].Field != "spec.rules[0].operations[1]" {
		t.Fatalf("json errors: %+v", r)
	}
}

func TestPolicyCheckMissingFile(t *testing.T) {
	code, _, errOut := run(t, "policy", "check", "/nonexistent/policy.yaml")
	if code != exitcode.Failure || !strings.Contains(errOut, "no such file or directory") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, "policy", "check")
	if code != exitcode.Usage || !strings.Contains(errOut, "requires at least 1 arg") {
		t.Fatalf("no arguments: exit %d, stderr %q", code, errOut)
	}
}

func TestPolicyExplainDocumentedAnswers(t *testing.T) {
	fin := filepath.Join(examplesDir, "finance-docs.yaml")
	cases := []struct {
		args []string
		want []string
		code int
	}{
		{[]string{"--path", "/srv/finance/q3.xlsx", "--exe", "/usr/bin/cat"},
			[]string{"Decision: DENY", "Decided by rule finance-docs/everyone-else (deny) at " + fin + ":17:7.", `no match: executable "/usr/bin/cat" is not one of`, "<= decides"}, exitcode.Denied},
		{[]string{"--path", "/srv/finance/q3.xlsx", "--exe", "/usr/lib/libreoffice/program/soffice.bin"},
			[]string{"Decision: ALLOW", "Decided by rule finance-docs/office-may-open (allow)", "match #2: no subject conditions"}, exitcode.OK},
		{[]string{"--path", "/srv/finance/macro.sh", "--exe", "/usr/lib/libreoffice/program/soffice.bin", "--op", "exec"},
			[]string{"Decision: DENY", "operation exec is not one of open"}, exitcode.Denied},
		{[]string{"--path", "/home/ana/notes.txt", "--exe", "/usr/bin/cat"},
			[]string{"Decision: ALLOW", "No policy covers this file: allowed.", `path matches none of ["/srv/finance/**"]`}, exitcode.OK},
		{[]string{"--path", "/srv/finance/q3.xlsx", "--exe", "/usr/bin/cat", "--mode", "audit"},
			[]string{"Decision: ALLOW", "Audit mode: rule finance-docs/everyone-else would deny"}, exitcode.OK},
	}
	for _, c := range cases {
		args := append([]string{"policy", "explain", "--policy", fin, "--exit-code"}, c.args...)
		code, out, errOut := run(t, args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", c.args, code, c.code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out)
			}
		}
	}
}

func TestPolicyExplainJSONAndPods(t *testing.T) {
	code, out, errOut := run(t, "policy", "explain", "-o", "json", "--policy", examplesDir,
		"--path", "/var/lib/kubelet/pods/7f1c/volumes/kubernetes.io~secret/db/password",
		"--exe", "/app/server", "--container", "3f4e5d6c7b8a9f00", "--runtime", "containerd",
		"--pod", "payments/api-0", "--pod-label", "app=payments-api", "--pod-label", "tier=backend")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Decision struct{ Verdict, Policy, Rule, Effect string }
		Input    struct{ Pod, Container string }
		Order    []string
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Decision.Verdict != "allow" || r.Decision.Policy != "payments-secrets" || r.Decision.Rule != "payments-api" || r.Input.Pod != "payments/api-0" {
		t.Fatalf("got %+v", r)
	}
	if len(r.Order) != 2 || r.Order[0] != "payments-secrets/payments-api" || r.Order[1] != "payments-secrets/everyone-else" {
		t.Fatalf("precedence order: %v", r.Order)
	}
	// The same pod with the wrong tier label is denied.
	code, out, _ = run(t, "policy", "explain", "-o", "json", "--policy", examplesDir,
		"--path", "/var/lib/kubelet/pods/7f1c/volumes/kubernetes.io~secret/db/password",
		"--exe", "/app/server", "--container", "3f4e5d6c7b8a9f00", "--runtime", "containerd",
		"--pod", "payments/api-0", "--pod-label", "app=payments-api", "--pod-label", "tier=frontend")
	if code != 0 || !strings.Contains(out, `"verdict": "deny"`) {
		t.Fatalf("frontend pod: exit %d\n%s", code, out)
	}
}

func TestPolicyExplainUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "explain", "--path", "/a", "--exe", "/b"}, `required flag(s) "policy" not set`},
		{[]string{"policy", "explain", "--policy", examplesDir, "--path", "/a", "--exe", "/b", "--op", "erase"}, `--op: unknown operation "erase"`},
		{[]string{"policy", "explain", "--policy", examplesDir, "--path", "/a", "--exe", "/b", "--pod", "nopod"}, "expected NAMESPACE/NAME"},
		{[]string{"policy", "explain", "--policy", examplesDir, "--path", "/a", "--exe", "/b", "-o", "yaml"}, `unknown output format "yaml"`},
	} {
		code, _, errOut := run(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errOut, c.want)
		}
	}
}

func TestVersionAndCompletion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "drmfilter ") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ = run(t, "version", "-o", "json")
	if code != 0 || !strings.Contains(out, `"goVersion"`) {
		t.Fatalf("version json: %d %q", code, out)
	}
	code, out, _ = run(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_drmfilter") {
		t.Fatalf("bash completion: exit %d", code)
	}
	code, _, errOut := run(t, "no-such-command")
	if code != exitcode.Usage || !strings.Contains(errOut, `unknown command "no-such-command"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
}

func TestPolicyExplainContainerPath(t *testing.T) {
	pol := filepath.Join(examplesDir, "container-secrets.yaml")
	base := []string{"policy", "explain", "--policy", pol, "--exit-code",
		"--path", "/var/lib/kubelet/pods/7f1c/volumes/kubernetes.io~secret/app/secret.yaml",
		"--container-path", "/etc/app/secret.yaml", "--exe", "/app/server",
		"--container", "3f4e5d6c7b8a9f00", "--runtime", "containerd"}
	code, out, errOut := run(t, append(base, "--image", "registry.example.com/payments/api:2.3",
		"--pod", "payments/api-0", "--pod-label", "app=payments-api")...)
	if code != 0 || !strings.Contains(out, "Decided by rule container-secrets/payments-api (allow)") ||
		!strings.Contains(out, `path matches "container path /etc/app/secret.yaml"`) {
		t.Fatalf("the payments API: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, append(base, "--image", "busybox:1.36")...)
	if code != exitcode.Denied || !strings.Contains(out, "Decided by rule container-secrets/other-containers (deny)") {
		t.Fatalf("another container: exit %d\n%s", code, out)
	}
	code, _, errOut = run(t, "policy", "explain", "--policy", pol, "--path", "/x", "--exe", "/y", "--container-path", "/etc/app/secret.yaml")
	if code == 0 || !strings.Contains(errOut, "the process must be in a container") {
		t.Fatalf("container path without a container: exit %d, %q", code, errOut)
	}
}
