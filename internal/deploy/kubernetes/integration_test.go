package kubernetes_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/drmfilter/drmfilter/internal/cli"
	"github.com/drmfilter/drmfilter/internal/deploy/kubernetes"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/testutil/kubeapi"
)

// kube is one real kube-apiserver for every integration test of this
// package; each test works in a namespace of its own.
var kube kubeapi.Shared

func TestMain(m *testing.M) { os.Exit(kube.Run(m)) }

// drmfilter runs the command line in-process.
func drmfilter(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Main(context.Background(), args, cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func policyFile(t *testing.T, dir, name, protected string) {
	t.Helper()
	doc := "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata:\n  name: " + strings.TrimSuffix(name, ".yaml") +
		"\nspec:\n  files:\n    paths: [\"" + protected + "/**\"]\n  rules:\n    - name: nobody\n      operations: [open]\n      effect: deny\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// versions are the resourceVersions of the eight objects deploy manages.
func versions(t *testing.T, cs clientset.Interface, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(ref string, obj metav1.Object, err error) {
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		out[ref] = obj.GetResourceVersion()
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	add("namespace", n, err)
	sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, kubeschema.ServiceAccount, metav1.GetOptions{})
	add("serviceaccount", sa, err)
	r, err := cs.RbacV1().Roles(ns).Get(ctx, kubeschema.AgentRole, metav1.GetOptions{})
	add("role", r, err)
	rb, err := cs.RbacV1().RoleBindings(ns).Get(ctx, kubeschema.AgentRole, metav1.GetOptions{})
	add("rolebinding", rb, err)
	cr, err := cs.RbacV1().ClusterRoles().Get(ctx, kubernetes.PodReaderName(ns), metav1.GetOptions{})
	add("clusterrole", cr, err)
	crb, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, kubernetes.PodReaderName(ns), metav1.GetOptions{})
	add("clusterrolebinding", crb, err)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	add("configmap", cm, err)
	ds, err := cs.AppsV1().DaemonSets(ns).Get(ctx, kubeschema.DaemonSet, metav1.GetOptions{})
	add("daemonset", ds, err)
	return out
}

func lines(action string, refs ...string) string {
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r + " " + action + "\n")
	}
	return b.String()
}

// allRefs are the objects of a deployment in ns, in the order deploy
// applies them.
func allRefs(ns string) []string {
	return []string{"namespace/" + ns, "serviceaccount/drmfilter-agent", "role/drmfilter-agent", "rolebinding/drmfilter-agent",
		"clusterrole/drmfilter-agent-pods-" + ns, "clusterrolebinding/drmfilter-agent-pods-" + ns,
		"configmap/drmfilter-policies", "daemonset/drmfilter-agent"}
}

func TestIntegrationDeployRedeployPolicyChangeConflictUndeploy(t *testing.T) {
	srv := kube.Get(t)
	ctx := context.Background()
	cs := clientset.NewForConfigOrDie(srv.Config)
	const ns = "it-lifecycle"
	dir := t.TempDir()
	policyFile(t, dir, "a.yaml", "/srv/a")
	deploy := []string{"deploy", "kubernetes", "--kubeconfig", srv.Kubeconfig, "-n", ns, "--policy", dir, "--image", "registry.example/drmfilter:it"}

	// A server dry run before the namespace exists checks the namespace
	// and the cluster-scoped objects only, says why, and stores nothing.
	code, out, errOut := drmfilter(t, append(deploy, "--dry-run=server")...)
	if code != exitcode.OK || !strings.HasPrefix(errOut, "namespace/"+ns+" created (server dry run)\n") ||
		!strings.Contains(errOut, "daemonset/drmfilter-agent not checked (server dry run): namespace "+ns+" does not exist yet") ||
		!strings.Contains(errOut, "clusterrolebinding/drmfilter-agent-pods-"+ns+" created (server dry run)\n") ||
		strings.Count(out, "\nkind: ") != 3 {
		t.Fatalf("server dry run of a new namespace: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("server dry run stored the namespace: %v", err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, kubernetes.PodReaderName(ns), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("server dry run stored the clusterrole: %v", err)
	}

	// First deploy: everything is created, and the API server accepts the
	// DaemonSet's security settings.
	code, out, errOut = drmfilter(t, deploy...)
	if code != exitcode.OK {
		t.Fatalf("deploy: exit %d\n%s", code, errOut)
	}
	if !strings.HasPrefix(out, lines("created", allRefs(ns)...)) {
		t.Fatalf("deploy printed:\n%s", out)
	}
	before := versions(t, cs, ns)

	// Second deploy, same inputs: unchanged, nothing written.
	code, out, errOut = drmfilter(t, deploy...)
	if code != exitcode.OK || !strings.HasPrefix(out, lines("unchanged", allRefs(ns)...)) {
		t.Fatalf("redeploy: exit %d\n%s%s", code, out, errOut)
	}
	if after := versions(t, cs, ns); !mapsEqual(before, after) {
		t.Errorf("redeploy changed resourceVersions: %v -> %v", before, after)
	}
	// The same through the package, counting the requests that write.
	var (
		mu     sync.Mutex
		writes []string
	)
	counting := rest.CopyConfig(srv.Config)
	counting.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet {
				mu.Lock()
				writes = append(writes, r.Method+" "+r.URL.Path)
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	pols, err := kubernetes.ReadPolicies([]string{dir}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kubernetes.Build(kubernetes.Options{Namespace: ns, Image: "registry.example/drmfilter:it"}, pols)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.Apply(ctx, clientset.NewForConfigOrDie(counting), m, kubernetes.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(writes) != 0 {
		t.Errorf("a deploy with the same inputs wrote: %v", writes)
	}

	// A policy change: only the ConfigMap changes; the pod template (and so
	// the pods) does not.
	policyFile(t, dir, "b.yaml", "/srv/b")
	code, out, errOut = drmfilter(t, deploy...)
	if code != exitcode.OK {
		t.Fatalf("policy change: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "configmap/drmfilter-policies configured\n") || strings.Count(out, " unchanged\n") != 7 {
		t.Errorf("policy change printed:\n%s", out)
	}
	changed := versions(t, cs, ns)
	for ref, rv := range changed {
		if (ref == "configmap") == (rv == before[ref]) {
			t.Errorf("after the policy change %s went from resourceVersion %s to %s", ref, before[ref], rv)
		}
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newSet, err := policy.LoadPaths([]string{dir}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 2 || cm.Annotations[kubeschema.AnnotationPolicyHash] != newSet.Hash {
		t.Errorf("configmap keys %d, hash %s, want 2 and %s", len(cm.Data), cm.Annotations[kubeschema.AnnotationPolicyHash], newSet.Hash)
	}

	// --dry-run=server: the server's answer is printed, nothing is stored.
	policyFile(t, dir, "c.yaml", "/srv/c")
	code, out, errOut = drmfilter(t, append(deploy, "--dry-run=server")...)
	if code != exitcode.OK || !strings.Contains(errOut, "configmap/drmfilter-policies configured (server dry run)") {
		t.Fatalf("server dry run: exit %d\n%s", code, errOut)
	}
	docs := strings.Split(out, "---\n")
	var printed corev1.ConfigMap
	if len(docs) != 8 {
		t.Fatalf("server dry run printed %d documents", len(docs))
	}
	if err := yaml.Unmarshal([]byte(docs[6]), &printed); err != nil || printed.Kind != "ConfigMap" || len(printed.Data) != 3 || printed.ManagedFields != nil {
		t.Errorf("server dry run configmap: kind %q, %d keys, managedFields %v (%v)", printed.Kind, len(printed.Data), printed.ManagedFields != nil, err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.Unmarshal([]byte(docs[7]), &ds); err != nil || ds.Spec.RevisionHistoryLimit == nil {
		t.Errorf("server dry run daemonset lacks the server's defaults (%v)", err)
	}
	if after := versions(t, cs, ns); !mapsEqual(changed, after) {
		t.Errorf("server dry run changed resourceVersions: %v -> %v", changed, after)
	}
	if err := os.Remove(filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatal(err)
	}

	// --watch-pods=false: a server dry run would delete the pod reader,
	// and deletes nothing; the deploy deletes it, binding first, and
	// changes nothing else; the next default deploy makes it again.
	podReader := kubernetes.PodReaderName(ns)
	removedLines := "clusterrolebinding/" + podReader + " deleted%[1]s\nclusterrole/" + podReader + " deleted%[1]s\n"
	code, out, errOut = drmfilter(t, append(deploy, "--watch-pods=false", "--dry-run=server")...)
	if code != exitcode.OK || !strings.Contains(errOut, fmt.Sprintf(removedLines, " (server dry run)")) || strings.Contains(out, "kind: ClusterRole\n") {
		t.Fatalf("server dry run without watching pods: exit %d\n%s%s", code, out, errOut)
	}
	if after := versions(t, cs, ns); !mapsEqual(changed, after) {
		t.Errorf("server dry run without watching pods changed resourceVersions: %v -> %v", changed, after)
	}
	code, out, errOut = drmfilter(t, append(deploy, "--watch-pods=false")...)
	if code != exitcode.OK || !strings.Contains(out, "rolebinding/drmfilter-agent unchanged\n"+fmt.Sprintf(removedLines, "")+"configmap/drmfilter-policies unchanged\n") ||
		strings.Count(out, " unchanged\n") != 6 {
		t.Fatalf("deploy without watching pods: exit %d\n%s%s", code, out, errOut)
	}
	for _, err := range []error{
		errOf(cs.RbacV1().ClusterRoles().Get(ctx, podReader, metav1.GetOptions{})),
		errOf(cs.RbacV1().ClusterRoleBindings().Get(ctx, podReader, metav1.GetOptions{})),
	} {
		if !apierrors.IsNotFound(err) {
			t.Errorf("pod reader after a deploy without watching pods: %v", err)
		}
	}
	code, out, errOut = drmfilter(t, append(deploy, "--watch-pods=false")...)
	if code != exitcode.OK || strings.Contains(out, "clusterrole") {
		t.Errorf("second deploy without watching pods: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = drmfilter(t, deploy...)
	if code != exitcode.OK || !strings.Contains(out, "clusterrole/"+podReader+" created\nclusterrolebinding/"+podReader+" created\n") {
		t.Fatalf("deploy watching pods again: exit %d\n%s%s", code, out, errOut)
	}

	// Someone else takes the image over; deploy names the field and the
	// manager and stops; --force-conflicts takes it back.
	edit := appsv1ac.DaemonSet(kubeschema.DaemonSet, ns).WithSpec(appsv1ac.DaemonSetSpec().
		WithTemplate(corev1ac.PodTemplateSpec().WithSpec(corev1ac.PodSpec().
			WithContainers(corev1ac.Container().WithName(kubernetes.ContainerName).WithImage("registry.example/other:1")))))
	if _, err := cs.AppsV1().DaemonSets(ns).Apply(ctx, edit, metav1.ApplyOptions{FieldManager: "kubectl-edit", Force: true}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = drmfilter(t, deploy...)
	if code != exitcode.Failure || !strings.Contains(errOut, `.spec.template.spec.containers[name="agent"].image (owned by "kubectl-edit")`) ||
		!strings.Contains(errOut, "--force-conflicts") {
		t.Errorf("conflict: exit %d\n%s", code, errOut)
	}
	code, out, errOut = drmfilter(t, append(deploy, "--force-conflicts")...)
	if code != exitcode.OK || !strings.Contains(out, "daemonset/drmfilter-agent configured\n") {
		t.Fatalf("--force-conflicts: exit %d\n%s%s", code, out, errOut)
	}
	got, err := cs.AppsV1().DaemonSets(ns).Get(ctx, kubeschema.DaemonSet, metav1.GetOptions{})
	if err != nil || got.Spec.Template.Spec.Containers[0].Image != "registry.example/drmfilter:it" {
		t.Fatalf("image after --force-conflicts: %v", err)
	}

	// An agent's status Lease, then undeploy.
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.NodeStatusName("node-1"),
		Labels: map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelNode: "node-1"}}}
	if _, err := cs.CoordinationV1().Leases(ns).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = drmfilter(t, "undeploy", "kubernetes", "--kubeconfig", srv.Kubeconfig, "-n", ns)
	want := "daemonset/drmfilter-agent deleted\nrolebinding/drmfilter-agent deleted\nrole/drmfilter-agent deleted\n" +
		"clusterrolebinding/" + podReader + " deleted\nclusterrole/" + podReader + " deleted\n" +
		"configmap/drmfilter-policies deleted\nserviceaccount/drmfilter-agent deleted\nlease/drmfilter-node-node-1 deleted\nnamespace/" + ns + " deleted\n"
	if code != exitcode.OK || out != want {
		t.Fatalf("undeploy: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := cs.AppsV1().DaemonSets(ns).Get(ctx, kubeschema.DaemonSet, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("daemonset after undeploy: %v", err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, podReader, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("clusterrolebinding after undeploy: %v", err)
	}
	// No namespace controller runs here, so the namespace stays
	// Terminating; undeploy again says so and succeeds.
	code, out, errOut = drmfilter(t, "undeploy", "kubernetes", "--kubeconfig", srv.Kubeconfig, "-n", ns)
	if code != exitcode.OK || !strings.Contains(out, "nothing to remove in namespace "+ns) {
		t.Errorf("second undeploy: exit %d\n%s%s", code, out, errOut)
	}
	// A deploy into the namespace being deleted says why it cannot.
	code, _, errOut = drmfilter(t, deploy...)
	if code != exitcode.Failure || !strings.Contains(errOut, "namespace "+ns+" is being deleted") {
		t.Errorf("deploy into a terminating namespace: exit %d\n%s", code, errOut)
	}
}

// TestIntegrationAgentRBAC acts as the agent's ServiceAccount and checks
// that it can do what the agent does and nothing else.
func TestIntegrationAgentRBAC(t *testing.T) {
	srv := kube.Get(t)
	ctx := context.Background()
	admin := clientset.NewForConfigOrDie(srv.Config)
	const ns, elsewhere = "it-rbac", "it-rbac-elsewhere"
	dir := t.TempDir()
	policyFile(t, dir, "a.yaml", "/srv/a")
	if code, _, errOut := drmfilter(t, "deploy", "kubernetes", "--kubeconfig", srv.Kubeconfig, "-n", ns, "--policy", dir); code != exitcode.OK {
		t.Fatalf("deploy: exit %d\n%s", code, errOut)
	}
	for _, obj := range []struct{ ns, name string }{{ns, "other"}, {elsewhere, kubeschema.PolicyConfigMap}} {
		if _, err := admin.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(obj.ns), metav1.ApplyOptions{FieldManager: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().ConfigMaps(obj.ns).Apply(ctx, corev1ac.ConfigMap(obj.name, obj.ns).WithData(map[string]string{"k": "v"}), metav1.ApplyOptions{FieldManager: "test"}); err != nil {
			t.Fatal(err)
		}
	}

	user, groups := kubeapi.ServiceAccountUser(ns, kubeschema.ServiceAccount)
	agent := clientset.NewForConfigOrDie(srv.Impersonate(user, groups...))
	byName := metav1.ListOptions{FieldSelector: "metadata.name=" + kubeschema.PolicyConfigMap}
	lease := kubeschema.NodeStatusName("node-1")
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("the agent may %s: %v", what, err)
		}
	}
	denied := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("the agent may not %s: got %v", what, err)
		}
	}

	_, err := agent.CoreV1().ConfigMaps(ns).Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	allowed("get its policy ConfigMap", err)
	_, err = agent.CoreV1().ConfigMaps(ns).List(ctx, byName)
	allowed("list its policy ConfigMap by name", err)
	w, err := agent.CoreV1().ConfigMaps(ns).Watch(ctx, byName)
	allowed("watch its policy ConfigMap by name", err)
	if err == nil {
		w.Stop()
	}
	_, err = agent.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease}}, metav1.CreateOptions{})
	allowed("create its node's Lease", err)
	l, err := agent.CoordinationV1().Leases(ns).Get(ctx, lease, metav1.GetOptions{})
	allowed("get its node's Lease", err)
	if err == nil {
		l.Annotations = map[string]string{kubeschema.AnnotationNodeStatus: `{"node":"node-1"}`}
		_, err = agent.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		allowed("update its node's Lease", err)
	}
	_, err = agent.CoordinationV1().Leases(ns).Apply(ctx, coordinationv1ac.Lease(lease, ns).WithSpec(coordinationv1ac.LeaseSpec().WithHolderIdentity("pod-1")),
		metav1.ApplyOptions{FieldManager: "drmfilter-agent"})
	denied("patch its node's Lease (the agent only gets and updates it)", err)

	_, err = agent.CoreV1().ConfigMaps(ns).Get(ctx, "other", metav1.GetOptions{})
	denied("get another ConfigMap", err)
	_, err = agent.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	denied("list every ConfigMap", err)
	_, err = agent.CoreV1().ConfigMaps(ns).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.PolicyConfigMap}}, metav1.UpdateOptions{})
	denied("change its policy ConfigMap", err)
	_, err = agent.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	denied("list secrets", err)
	err = agent.CoordinationV1().Leases(ns).Delete(ctx, lease, metav1.DeleteOptions{})
	denied("delete a Lease", err)
	_, err = agent.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
	denied("list Leases", err)
	_, err = agent.CoreV1().ConfigMaps(elsewhere).Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	denied("read a ConfigMap of that name in another namespace", err)
	_, err = agent.CoordinationV1().Leases(elsewhere).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease}}, metav1.CreateOptions{})
	denied("create a Lease in another namespace", err)
	_, err = agent.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	denied("list nodes", err)
	_, err = agent.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	denied("list secrets of every namespace", err)
	_, err = agent.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	denied("list configmaps of every namespace", err)

	// Pods: what the agent does, watch its node's pods cluster-wide for
	// their labels, and nothing more.
	pods := map[string]string{"app-on-node-1": "node-1", "app-on-node-2": "node-2"}
	for name, node := range pods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: elsewhere, Labels: map[string]string{"app": "payments"}},
			Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: new(false),
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
		// The ServiceAccount admission needs the namespace's default
		// ServiceAccount, which no controller makes here.
		if _, err := admin.CoreV1().ServiceAccounts(elsewhere).Apply(ctx, corev1ac.ServiceAccount("default", elsewhere), metav1.ApplyOptions{FieldManager: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().Pods(elsewhere).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	onNode1 := metav1.ListOptions{FieldSelector: "spec.nodeName=node-1"}
	// The agent's start-up check: a List of its node's pods, limit 1.
	startCheck := onNode1
	startCheck.Limit = 1
	list, err := agent.CoreV1().Pods(metav1.NamespaceAll).List(ctx, startCheck)
	allowed("list the pods of its node in every namespace", err)
	if err == nil && (len(list.Items) != 1 || list.Items[0].Name != "app-on-node-1") {
		t.Errorf("the pods of node-1: %d, want app-on-node-1", len(list.Items))
	}
	_, err = agent.CoreV1().Pods(elsewhere).Get(ctx, "app-on-node-1", metav1.GetOptions{})
	allowed("get a pod", err)
	w, err = agent.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, onNode1)
	allowed("watch the pods of its node", err)
	if err == nil {
		// A label changed after the pod was created reaches the agent.
		patch := []byte(`{"metadata":{"labels":{"app":"billing"}}}`)
		if _, err := admin.CoreV1().Pods(elsewhere).Patch(ctx, "app-on-node-1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
	events:
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Error("the pod watch ended before the label change")
					break events
				}
				if p, isPod := ev.Object.(*corev1.Pod); isPod && ev.Type == watch.Modified {
					if p.Name != "app-on-node-1" || p.Labels["app"] != "billing" {
						t.Errorf("watch: %s %s labels %v", ev.Type, p.Name, p.Labels)
					}
					break events
				}
			case <-timeout:
				t.Error("the pod watch reported no label change")
				break events
			}
		}
		w.Stop()
	}
	_, err = agent.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{})
	denied("create a pod", err)
	_, err = agent.CoreV1().Pods(elsewhere).Patch(ctx, "app-on-node-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"x"}}}`), metav1.PatchOptions{})
	denied("patch a pod", err)
	err = agent.CoreV1().Pods(elsewhere).Delete(ctx, "app-on-node-2", metav1.DeleteOptions{})
	denied("delete a pod", err)
	err = agent.CoreV1().Pods(elsewhere).GetLogs("app-on-node-1", &corev1.PodLogOptions{}).Do(ctx).Error()
	denied("read a pod's log", err)
	err = agent.CoreV1().RESTClient().Post().Namespace(elsewhere).Resource("pods").Name("app-on-node-1").SubResource("exec").
		Param("container", "app").Param("command", "true").Do(ctx).Error()
	denied("exec in a pod", err)

	// A deployment without the pod reader: its agent may read its policy
	// but no pods.
	const noWatch = "it-rbac-no-watch"
	if code, _, errOut := drmfilter(t, "deploy", "kubernetes", "--kubeconfig", srv.Kubeconfig, "-n", noWatch, "--policy", dir, "--watch-pods=false"); code != exitcode.OK {
		t.Fatalf("deploy --watch-pods=false: exit %d\n%s", code, errOut)
	}
	user, groups = kubeapi.ServiceAccountUser(noWatch, kubeschema.ServiceAccount)
	plain := clientset.NewForConfigOrDie(srv.Impersonate(user, groups...))
	_, err = plain.CoreV1().ConfigMaps(noWatch).Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	allowed("get its policy ConfigMap (--watch-pods=false)", err)
	_, err = plain.CoreV1().Pods(metav1.NamespaceAll).List(ctx, startCheck)
	denied("list pods (--watch-pods=false)", err)
	_, err = plain.CoreV1().Pods(noWatch).List(ctx, metav1.ListOptions{})
	denied("list the pods of its namespace (--watch-pods=false)", err)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// errOf is the error of a call's two results.
func errOf[T any](_ T, err error) error { return err }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
