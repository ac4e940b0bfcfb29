package kubeagent

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/fleet"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/testutil/kubeapi"
)

// agentRBAC creates the agent's ServiceAccount, Role and RoleBinding in ns
// as the deploy command describes them: get, list and watch of the policy
// ConfigMap only, and create, get, update and patch of Leases.
func agentRBAC(t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	meta := metav1.ObjectMeta{Name: kubeschema.AgentRole, Namespace: ns}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.ServiceAccount, Namespace: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{kubeschema.PolicyConfigMap}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, Verbs: []string{"create", "get", "update", "patch"}},
	}}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: kubeschema.AgentRole},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kubeschema.ServiceAccount, Namespace: ns}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestAgainstARealAPIServer: as the agent's ServiceAccount, the watcher
// lists and watches the ConfigMap through its field selector (which RBAC
// authorizes against resourceNames), sees an update within seconds, and the
// publisher writes the Lease; then fleet status, as the admin, joins it
// with the agent's pod.
func TestAgainstARealAPIServer(t *testing.T) {
	srv := kubeapi.Start(t)
	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "drmfilter-it"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	agentRBAC(t, admin, ns)
	v1 := map[string]string{"p.yaml": policyYAML("v1")}
	cm := policyConfigMap(ns, v1)
	cm.Annotations = map[string]string{kubeschema.AnnotationPolicyHash: hashOf(t, v1)}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another ConfigMap the agent may not read.
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "secret-stuff", Namespace: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	as, err := kubernetes.NewForConfig(srv.ImpersonateServiceAccount(ns, kubeschema.ServiceAccount))
	if err != nil {
		t.Fatal(err)
	}
	// The Role grants no more than that.
	if _, err := as.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing every ConfigMap as the agent: %v, want Forbidden", err)
	}
	if _, err := as.CoreV1().ConfigMaps(ns).Get(ctx, "secret-stuff", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("getting another ConfigMap as the agent: %v, want Forbidden", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	logs := &logBuffer{}
	n, err := Start(runCtx, Options{Client: as, Namespace: ns, Node: "node-1", Pod: "drmfilter-agent-x7k2p", PolicyPaths: []string{t.TempDir()}, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if n.Watcher().Source() != "" {
		t.Fatalf("source before the first read: %q", n.Watcher().Source())
	}
	a := newAgent(t, n.Sources)
	if n.Watcher().Source() != kubeschema.SourceAPI || a.Status().Policy.Hash != hashOf(t, v1) {
		t.Fatalf("initial load from %q with hash %s; log:\n%s", n.Watcher().Source(), a.Status().Policy.Hash, logs.String())
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx, a) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	published := func() kubeschema.NodeStatus {
		l, err := admin.CoordinationV1().Leases(ns).Get(ctx, kubeschema.NodeStatusName("node-1"), metav1.GetOptions{})
		if err != nil {
			return kubeschema.NodeStatus{}
		}
		st, _ := kubeschema.DecodeNodeStatus(l.Annotations[kubeschema.AnnotationNodeStatus])
		return st
	}
	eventually(t, "the Lease with the first policy", func() bool { return published().PolicyHash == hashOf(t, v1) })

	v2 := map[string]string{"p.yaml": policyYAML("v2"), "q.yml": policyYAML("q")}
	cm.Data = v2
	cm.Annotations[kubeschema.AnnotationPolicyHash] = hashOf(t, v2)
	updated := time.Now()
	if _, err := admin.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Lease with the updated policy", func() bool { return published().PolicyHash == hashOf(t, v2) })
	t.Logf("ConfigMap update to published Lease: %s", time.Since(updated).Round(time.Millisecond))
	if st := published(); st.PolicySource != kubeschema.SourceAPI || st.PolicyGeneration != 2 || st.Pod != "drmfilter-agent-x7k2p" {
		t.Fatalf("published %+v", st)
	}

	// There is no kubelet: the test creates the agent's pod and writes its
	// status.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "drmfilter-agent-x7k2p", Namespace: ns,
			Labels: map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelComponent: kubeschema.LabelComponentAgent}},
		Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: kubeschema.ServiceAccount, AutomountServiceAccountToken: new(false),
			Containers: []corev1.Container{{Name: "agent", Image: "drmfilter:test"}}},
	}
	pod, err = admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "agent", Image: "drmfilter:test", ImageID: "drmfilter@sha256:00", Ready: true, RestartCount: 1}}}
	if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	snap, err := fleet.Fetch(ctx, admin, ns)
	if err != nil {
		t.Fatal(err)
	}
	r := fleet.Build(snap, time.Now())
	if len(r.Nodes) != 1 || !r.Converged() {
		t.Fatalf("fleet report %+v", r)
	}
	row := r.Nodes[0]
	if row.Node != "node-1" || row.Pod != "drmfilter-agent-x7k2p" || !row.Ready || row.Restarts != 1 || row.Stale || row.Status == nil || row.Status.PolicyGeneration != 2 {
		t.Fatalf("row %+v", row)
	}
	if got := r.Line(); got != "policy "+kubeschema.ShortHash(hashOf(t, v2))+" on 1/1 nodes" {
		t.Fatalf("summary %q", got)
	}
}

// TestPodLabelsAgainstARealAPIServer: as the agent's ServiceAccount, with
// the pod reader ClusterRole the deploy command grants, PodLabels follows a
// relabelled pod of its node and ignores other nodes' pods; without the
// ClusterRole it gives up at once and leaves the labels to the runtime.
func TestPodLabelsAgainstARealAPIServer(t *testing.T) {
	srv := kubeapi.Start(t)
	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "drmfilter-pods"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	agentRBAC(t, admin, ns)
	as, err := kubernetes.NewForConfig(srv.ImpersonateServiceAccount(ns, kubeschema.ServiceAccount))
	if err != nil {
		t.Fatal(err)
	}
	// No kubelet runs: a pod created with spec.nodeName is simply stored.
	for _, p := range []*corev1.Pod{
		testPod("api-0", "node-1", "", map[string]string{"tier": "backend"}),
		testPod("web-0", "node-2", "", map[string]string{"tier": "web"}),
	} {
		// There is no controller manager to make the "default" account.
		p.Namespace, p.Spec.ServiceAccountName = ns, kubeschema.ServiceAccount
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	api0, err := admin.CoreV1().Pods(ns).Get(ctx, "api-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web0, err := admin.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Without the ClusterRole: Forbidden, said once, nothing known.
	var logs logBuffer
	denied := NewPodLabels(as, "node-1", logs.logger())
	run(t, denied.Run)
	eventually(t, "the agent saying it may not read pods", func() bool { return strings.Contains(logs.String(), "no permission to read pods") })
	if _, ok := denied.Labels(string(api0.UID)); ok {
		t.Fatalf("without permission, the pod is known; log:\n%s", logs.String())
	}

	meta := metav1.ObjectMeta{Name: kubeschema.AgentPodReader}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: kubeschema.AgentPodReader},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: kubeschema.ServiceAccount, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := NewPodLabels(as, "node-1", nil)
	run(t, p.Run)
	eventually(t, "the node's pod through the API", func() bool {
		l, ok := p.Labels(string(api0.UID))
		return ok && l["tier"] == "backend" && l["io.kubernetes.pod.namespace"] == ns
	})
	// The one that started without permission asks again and follows.
	eventually(t, "the pod, for the agent that started before the grant", func() bool {
		_, ok := denied.Labels(string(api0.UID))
		return ok
	})
	api0.Labels["tier"] = "frontend"
	if _, err := admin.CoreV1().Pods(ns).Update(ctx, api0, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the relabelled pod", func() bool {
		l, _ := p.Labels(string(api0.UID))
		return l["tier"] == "frontend"
	})
	if _, ok := p.Labels(string(web0.UID)); ok {
		t.Error("a pod of another node is known")
	}
}
