//go:build !nodeploy

package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/drmfilter/drmfilter/internal/exitcode"
)

// recordingCluster is an API server that answers nothing but counts the
// requests it gets, and a kubeconfig file that points at it.
func recordingCluster(t *testing.T) (kubeconfig string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "not a real API server", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, requests
}

func TestDeployKubernetesRefusesAnInvalidPolicyBeforeTheCluster(t *testing.T) {
	kubeconfig, requests := recordingCluster(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: x}\nspec: {files: {}, rules: []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "deploy", "kubernetes", "--kubeconfig", kubeconfig, "--policy", bad)
	if code != exitcode.PolicyInvalid || !strings.Contains(errOut, bad+":4:15: spec.files: empty file selector") ||
		!strings.Contains(errOut, "nothing was sent to the cluster") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if out != "" || requests.Load() != 0 {
		t.Errorf("stdout %q, %d requests to the cluster", out, requests.Load())
	}

	code, _, errOut = run(t, "deploy", "kubernetes", "--kubeconfig", kubeconfig, "--policy", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != exitcode.PolicyInvalid || !strings.Contains(errOut, "missing.yaml") || requests.Load() != 0 {
		t.Errorf("missing file: exit %d, stderr %s", code, errOut)
	}
}

func TestDeployKubernetesDryRunPrintsTheObjectsWithoutACluster(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	code, out, errOut := run(t, "deploy", "kubernetes", "--policy", filepath.Join(examplesDir, "demo.yaml"),
		"--dry-run", "--image", "registry.example/drmfilter:1", "--max-unavailable", "25%", "-n", "security")
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	docs := strings.Split(out, "---\n")
	if len(docs) != 6 {
		t.Fatalf("%d documents", len(docs))
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(docs[5]), &ds); err != nil {
		t.Fatal(err)
	}
	if ds.Kind != "DaemonSet" || ds.Namespace != "security" || ds.Spec.Template.Spec.Containers[0].Image != "registry.example/drmfilter:1" ||
		ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "25%" {
		t.Errorf("daemonset %s/%s image %s", ds.Namespace, ds.Name, ds.Spec.Template.Spec.Containers[0].Image)
	}
	if !strings.Contains(docs[4], "demo.yaml: |") || !strings.Contains(docs[4], "drmfilter.dev/policy-hash: sha256:") {
		t.Errorf("configmap:\n%s", docs[4])
	}

	code, out, _ = run(t, "deploy", "kubernetes", "--policy", filepath.Join(examplesDir, "demo.yaml"), "--dry-run=client", "-o", "json")
	if code != exitcode.OK || !strings.HasPrefix(out, "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\"") {
		t.Errorf("-o json: exit %d:\n%.200s", code, out)
	}
}

func TestDeployKubernetesUsageErrors(t *testing.T) {
	demo := filepath.Join(examplesDir, "demo.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "no policy given"},
		{[]string{"--policy", demo, "--dry-run=maybe"}, `want client or server`},
		{[]string{"--policy", demo, "--dry-run", "-o", "table"}, "unknown output format"},
		{[]string{"--policy", demo, "-o", "json"}, "add --dry-run"},
		{[]string{"--policy", demo, "--dry-run", "--max-unavailable", "0"}, "--max-unavailable"},
		{[]string{"--policy", demo, "--dry-run", "--runtime-socket", "containerd.sock"}, "absolute"},
		{[]string{"--policy", demo, "--dry-run", "-n", "Bad_Name"}, `namespace "Bad_Name"`},
	} {
		code, _, errOut := run(t, append([]string{"deploy", "kubernetes"}, tc.args...)...)
		if code != exitcode.Usage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %s", tc.args, code, errOut)
		}
	}
}

func TestDeployKubernetesWithoutAKubeconfigSaysWhatToDo(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	code, _, errOut := run(t, "deploy", "kubernetes", "--policy", filepath.Join(examplesDir, "demo.yaml"))
	if code != exitcode.Failure || !strings.Contains(errOut, "no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
	kubeconfig, _ := recordingCluster(t)
	code, _, errOut = run(t, "undeploy", "kubernetes", "--kubeconfig", kubeconfig, "--context", "nope")
	if code != exitcode.Failure || !strings.Contains(errOut, `"nope"`) || !strings.Contains(errOut, "kubectl config get-contexts") {
		t.Errorf("unknown context: exit %d, stderr %s", code, errOut)
	}
}

func TestDeployKubernetesNamesTheObjectWhenTheClusterFails(t *testing.T) {
	kubeconfig, requests := recordingCluster(t)
	code, _, errOut := run(t, "deploy", "kubernetes", "--kubeconfig", kubeconfig, "--policy", filepath.Join(examplesDir, "demo.yaml"))
	if code != exitcode.Failure || !strings.Contains(errOut, "read namespace/drmfilter: ServiceUnavailable") || requests.Load() == 0 {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}
