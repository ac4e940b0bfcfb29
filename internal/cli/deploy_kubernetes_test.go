//go:build !nodeploy

package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
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
	if len(docs) != 8 {
		t.Fatalf("%d documents", len(docs))
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(docs[7]), &ds); err != nil {
		t.Fatal(err)
	}
	// The pod reader of namespace security: its own name, its
	// ServiceAccount, pods read-only.
	var cr rbacv1.ClusterRole
	var crb rbacv1.ClusterRoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs[4]), &cr); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[5]), &crb); err != nil {
		t.Fatal(err)
	}
	if cr.Kind != "ClusterRole" || cr.Name != "drmfilter-agent-pods-security" || len(cr.Rules) != 1 ||
		strings.Join(cr.Rules[0].Resources, ",") != "pods" || strings.Join(cr.Rules[0].Verbs, ",") != "get,list,watch" {
		t.Errorf("clusterrole:\n%s", docs[4])
	}
	if crb.Kind != "ClusterRoleBinding" || crb.Name != cr.Name || crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 ||
		crb.Subjects[0].Namespace != "security" || crb.Subjects[0].Name != "drmfilter-agent" {
		t.Errorf("clusterrolebinding:\n%s", docs[5])
	}
	if ds.Kind != "DaemonSet" || ds.Namespace != "security" || ds.Spec.Template.Spec.Containers[0].Image != "registry.example/drmfilter:1" ||
		ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "25%" {
		t.Errorf("daemonset %s/%s image %s", ds.Namespace, ds.Name, ds.Spec.Template.Spec.Containers[0].Image)
	}
	if !strings.Contains(docs[6], "demo.yaml: |") || !strings.Contains(docs[6], "drmfilter.dev/policy-hash: sha256:") {
		t.Errorf("configmap:\n%s", docs[6])
	}

	// --watch-pods=false: no cluster-wide object at all.
	code, out, errOut = run(t, "deploy", "kubernetes", "--policy", filepath.Join(examplesDir, "demo.yaml"), "--dry-run", "--watch-pods=false")
	if code != exitcode.OK || strings.Count(out, "---\n") != 5 || strings.Contains(out, "ClusterRole") {
		t.Errorf("--watch-pods=false: exit %d, %d documents, stderr %s", code, strings.Count(out, "---\n")+1, errOut)
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
		{[]string{"--policy", demo, "--dry-run", "--watch-pods=maybe"}, `--watch-pods`},
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

// namespaceAdminCluster is an API server for someone who may write in
// namespaces but may not read or write ClusterRoles and
// ClusterRoleBindings: it finds no object, takes every apply (echoing the
// applied object), and forbids the cluster-scoped RBAC requests.
func namespaceAdminCluster(t *testing.T) (kubeconfig string, applied *atomic.Int64) {
	t.Helper()
	applied = new(atomic.Int64)
	status := func(w http.ResponseWriter, code int, reason string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"code":%d,"message":"as the test says"}`, reason, code)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/clusterrole"):
			status(w, http.StatusForbidden, "Forbidden")
		case r.Method == http.MethodGet:
			status(w, http.StatusNotFound, "NotFound")
		case r.Method == http.MethodPatch:
			body, err := io.ReadAll(r.Body)
			if err != nil {
				status(w, http.StatusBadRequest, "BadRequest")
				return
			}
			applied.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		default:
			status(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
		}
	}))
	t.Cleanup(srv.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: %q}}]\nusers: [{name: u, user: {token: t}}]\n"+
		"contexts: [{name: ctx, context: {cluster: c, user: u}}]\ncurrent-context: ctx\n", srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, applied
}

func TestDeployKubernetesWithoutClusterRightsPointsToWatchPodsFalse(t *testing.T) {
	kubeconfig, applied := namespaceAdminCluster(t)
	demo := filepath.Join(examplesDir, "demo.yaml")
	code, out, errOut := run(t, "deploy", "kubernetes", "--kubeconfig", kubeconfig, "--policy", demo)
	if code != exitcode.Failure || !strings.Contains(errOut, "read clusterrole/drmfilter-agent-pods: Forbidden") ||
		!strings.Contains(errOut, "deploy with --watch-pods=false") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
	if !strings.HasSuffix(out, "rolebinding/drmfilter-agent created\n") {
		t.Errorf("stdout:\n%s", out)
	}

	applied.Store(0)
	code, out, errOut = run(t, "deploy", "kubernetes", "--kubeconfig", kubeconfig, "--policy", demo, "--watch-pods=false")
	if code != exitcode.OK || applied.Load() != 6 {
		t.Fatalf("--watch-pods=false: exit %d, %d objects applied, stderr %s", code, applied.Load(), errOut)
	}
	if !strings.Contains(out, "rolebinding/drmfilter-agent created\nclusterrolebinding/drmfilter-agent-pods kept: these credentials may not read it (Forbidden)") ||
		!strings.Contains(out, "daemonset/drmfilter-agent created\n") {
		t.Errorf("--watch-pods=false printed:\n%s", out)
	}
}
