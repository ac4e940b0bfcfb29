package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// TestInterpretersAndTheLoaderCannotRunWhatMayNotBeExecuted: files in
// tools/ may be read by anyone but executed by no one. Running them
// through the dynamic loader or an interpreter opens them rather than
// executes them; those opens are decided as the execs they are.
func TestInterpretersAndTheLoaderCannotRunWhatMayNotBeExecuted(t *testing.T) {
	h := startAgent(t, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: no-exec-tools}
spec:
  files:
    paths: ["%s/tools/**"]
  rules:
    - name: nobody-may-execute
      operations: [exec]
      effect: deny
`, fs)
	}, nil)
	tools := h.path("tools")
	if err := os.Mkdir(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(realPath("true"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(tools, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bin := write("true", string(data), 0o755)
	script := write("x.sh", "echo ran the script\n", 0o755)
	perlScript := write("x.pl", "print \"ran the script\\n\";\n", 0o755)
	loader, err := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	if err != nil {
		matches, _ := filepath.Glob("/lib/*/ld-linux-*.so.*")
		if len(matches) == 0 {
			t.Fatalf("no dynamic loader found: %v", err)
		}
		loader = matches[0]
	}

	out, err := run(t, "/", "env", bin)
	mustDeny(t, out, err, "executing a file of tools/")
	out, err = run(t, "/", "cat", script)
	mustAllow(t, out, err, "reading a script of tools/")

	for _, c := range []struct {
		what string
		argv []string
	}{
		{"the dynamic loader running a binary of tools/", []string{loader, bin}},
		{"sh running a script of tools/", []string{"sh", script}},
		{"sh with an option running a script of tools/", []string{"sh", "-e", script}},
		{"sh running a script of tools/ by a relative name", []string{"sh", "tools/x.sh"}},
		{"perl running a script of tools/", []string{"perl", perlScript}},
		{"busybox sh running a script of tools/", []string{"busybox", "sh", script}},
	} {
		if _, err := exec.LookPath(c.argv[0]); err != nil && !testutil.InCI() {
			t.Logf("skipping %s: %v", c.what, err)
			continue
		}
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Dir = h.fs
		b, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(b), "ran the script") {
			t.Errorf("%s: ran (err=%v, out=%q)", c.what, err, b)
		}
	}
	// A script elsewhere still runs.
	public := h.path("public/y.sh")
	if err := os.WriteFile(public, []byte("echo public\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "/", "sh", public)
	mustAllow(t, out, err, "sh running a script outside tools/")

	h.stop()
	var execDenials int
	for _, r := range h.audit.records(t) {
		if r.Decision == "deny" && r.Operation == "exec" && strings.HasPrefix(r.Reason, "run ") {
			execDenials++
		}
	}
	if execDenials < 4 {
		t.Errorf("%d exec denials recorded as run by a loader or interpreter, want at least 4: %+v", execDenials, h.audit.records(t))
	}
}
