package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/exitcode"
)

func TestRunRejectsABrokenPolicyBeforeTouchingTheKernel(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: x}\nspec: {files: {}, rules: []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "run", "--policy", bad, "--audit-file", "-", "--metrics-address", "-", "--status-socket", filepath.Join(t.TempDir(), "s.sock"))
	if code != exitcode.PolicyInvalid || !strings.Contains(errOut, bad+":4:15: spec.files: empty file selector") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestRunRejectsABadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("failureMode: sometimes\nmetricsAddress: nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "run", "--config", cfg, "--policy", filepath.Join(examplesDir, "demo.yaml"))
	if code != exitcode.Failure || !strings.Contains(errOut, `failureMode: "sometimes" is not open or closed`) || !strings.Contains(errOut, `metricsAddress: "nonsense" must be host:port`) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestStatusWithoutAnAgent(t *testing.T) {
	code, _, errOut := run(t, "status", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != exitcode.Failure || !strings.Contains(errOut, "is the agent running?") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestRunKubernetesFlags(t *testing.T) {
	t.Setenv("DRMFILTER_NODE_NAME", "")
	pol := filepath.Join(examplesDir, "demo.yaml")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--node-name", "n1"}, exitcode.Usage, "--node-name needs --kubernetes"},
		{[]string{"--kubeconfig", "k"}, exitcode.Usage, "--kubeconfig needs --kubernetes"},
		{[]string{"--kubernetes"}, exitcode.Usage, "the node name is not known: set $DRMFILTER_NODE_NAME"},
		{[]string{"--kubernetes", "--node-name", "n1", "--kubeconfig", "/nonexistent/kubeconfig"}, exitcode.Failure, "kubernetes client configuration"},
	} {
		args := append([]string{"run", "--policy", pol, "--audit-file", "-", "--metrics-address", "-", "--status-socket", filepath.Join(t.TempDir(), "s.sock")}, c.args...)
		code, _, errOut := run(t, args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want %d with %q; stderr:\n%s", c.args, code, c.code, c.want, errOut)
		}
	}
}
