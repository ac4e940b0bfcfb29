package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// writes lists the verb and "resource/name" of every write the fake
// clientset recorded since index from.
func writes(cs *fake.Clientset, from int) []string {
	var out []string
	for _, a := range cs.Actions()[from:] {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		name := ""
		switch a := a.(type) {
		case k8stesting.PatchAction:
			name = a.GetName()
		case k8stesting.DeleteAction:
			name = a.GetName()
		}
		out = append(out, fmt.Sprintf("%s %s/%s", a.GetVerb(), a.GetResource().Resource, name))
	}
	return out
}

func actions(results []Result) string {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%s %s\n", r.Ref, r.Action)
	}
	return b.String()
}

func TestApplyCreatesThenChangesNothingThenOnlyTheConfigMap(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	m := testManifest(t, onePolicy)

	res, err := Apply(ctx, cs, m, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `namespace/drmfilter created
serviceaccount/drmfilter-agent created
role/drmfilter-agent created
rolebinding/drmfilter-agent created
clusterrole/drmfilter-agent-pods created
clusterrolebinding/drmfilter-agent-pods created
configmap/drmfilter-policies created
daemonset/drmfilter-agent created
`
	if got := actions(res); got != want {
		t.Errorf("first deploy:\n%s", got)
	}
	ds, err := cs.AppsV1().DaemonSets("drmfilter").Get(ctx, kubeschema.DaemonSet, metav1.GetOptions{})
	if err != nil || ds.Spec.Template.Spec.Containers[0].Image != "registry.example/drmfilter:test" {
		t.Fatalf("daemonset after deploy: %v", err)
	}

	// Same inputs: nothing is written.
	n := len(cs.Actions())
	res, err = Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res); strings.Count(got, " unchanged\n") != 8 {
		t.Errorf("second deploy:\n%s", got)
	}
	if w := writes(cs, n); len(w) != 0 {
		t.Errorf("second deploy wrote %v", w)
	}

	// Another policy: only the ConfigMap is written.
	n = len(cs.Actions())
	changed := map[string]string{"secrets.yaml": policyDoc("secrets", "/srv/other")}
	res, err = Apply(ctx, cs, testManifest(t, changed), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(cs, n); !slices.Equal(w, []string{"patch configmaps/drmfilter-policies"}) {
		t.Errorf("policy change wrote %v", w)
	}
	if got := actions(res); !strings.Contains(got, "configmap/drmfilter-policies configured\n") || strings.Count(got, " unchanged\n") != 7 {
		t.Errorf("policy change:\n%s", got)
	}
	cm, err := cs.CoreV1().ConfigMaps("drmfilter").Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["secrets.yaml"] != changed["secrets.yaml"] || cm.Annotations[kubeschema.AnnotationPolicyHash] != testPolicies(t, changed).Set.Hash {
		t.Error("configmap does not carry the new policy and its hash")
	}

	// A policy file removed from the set is removed from the ConfigMap.
	two := map[string]string{"a.yaml": policyDoc("a", "/srv/a"), "b.yaml": policyDoc("b", "/srv/b")}
	if _, err := Apply(ctx, cs, testManifest(t, two), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cs, testManifest(t, map[string]string{"a.yaml": two["a.yaml"]}), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	cm, err = cs.CoreV1().ConfigMaps("drmfilter").Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(mapsKeys(cm.Data)); !slices.Equal(keys, []string{"a.yaml"}) {
		t.Errorf("configmap keys %v after b.yaml was dropped", keys)
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestApplyReportsFieldsOwnedByAnotherManager(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if _, err := Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Someone takes the image over, as `kubectl apply --server-side
	// --force-conflicts --field-manager kubectl-edit` would.
	edit := appsv1ac.DaemonSet(kubeschema.DaemonSet, "drmfilter").WithSpec(appsv1ac.DaemonSetSpec().
		WithTemplate(corev1ac.PodTemplateSpec().WithSpec(corev1ac.PodSpec().
			WithContainers(corev1ac.Container().WithName(ContainerName).WithImage("registry.example/other:1")))))
	if _, err := cs.AppsV1().DaemonSets("drmfilter").Apply(ctx, edit, metav1.ApplyOptions{FieldManager: "kubectl-edit", Force: true}); err != nil {
		t.Fatal(err)
	}

	var reported []string
	_, err := Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{Report: func(r Result) { reported = append(reported, r.Ref+" "+string(r.Action)) }})
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("want a ConflictError, got %v", err)
	}
	if ce.Ref != "daemonset/drmfilter-agent" || len(ce.Conflicts) != 1 ||
		ce.Conflicts[0].Manager != "kubectl-edit" || ce.Conflicts[0].Field != `.spec.template.spec.containers[name="agent"].image` {
		t.Errorf("conflict %+v", ce)
	}
	if msg := err.Error(); !strings.Contains(msg, `.spec.template.spec.containers[name="agent"].image (owned by "kubectl-edit")`) {
		t.Errorf("message %q", msg)
	}
	if len(reported) != 7 {
		t.Errorf("objects before the DaemonSet: %v", reported)
	}

	res, err := Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[len(res)-1]; got.Ref != "daemonset/drmfilter-agent" || got.Action != Configured {
		t.Errorf("forced: %s %s", got.Ref, got.Action)
	}
	ds, err := cs.AppsV1().DaemonSets("drmfilter").Get(ctx, kubeschema.DaemonSet, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := ds.Spec.Template.Spec.Containers[0].Image; img != "registry.example/drmfilter:test" {
		t.Errorf("image after --force-conflicts: %s", img)
	}
}

func TestApplyNamesTheObjectAndReasonOfAnAPIError(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("patch", "roles", func(k8stesting.Action) (bool, runtimeObject, error) {
		return true, nil, forbidden("roles", kubeschema.AgentRole)
	})
	_, err := Apply(context.Background(), cs, testManifest(t, onePolicy), ApplyOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "apply role/drmfilter-agent: Forbidden: ") {
		t.Errorf("error %v", err)
	}
}

func TestUndeployRemovesEverythingAndCanRunAgain(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if _, err := Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Two agents published their nodes' status; a Lease of someone else's
	// stays.
	for _, l := range []*coordinationv1.Lease{
		{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.NodeStatusName("n1"), Namespace: "drmfilter", Labels: map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue}}},
		{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.NodeStatusName("n2"), Namespace: "drmfilter", Labels: map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "drmfilter"}},
	} {
		if _, err := cs.CoordinationV1().Leases("drmfilter").Create(ctx, l, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var lines []string
	removed, err := Undeploy(ctx, cs, UndeployOptions{KeepNamespace: true, Report: func(l string) { lines = append(lines, l) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"daemonset/drmfilter-agent", "rolebinding/drmfilter-agent", "role/drmfilter-agent",
		"clusterrolebinding/drmfilter-agent-pods", "clusterrole/drmfilter-agent-pods", "configmap/drmfilter-policies",
		"serviceaccount/drmfilter-agent", "lease/drmfilter-node-n1", "lease/drmfilter-node-n2"}
	if !slices.Equal(removed, want) || len(lines) != len(want) || lines[0] != "daemonset/drmfilter-agent deleted" {
		t.Errorf("removed %v, printed %v", removed, lines)
	}
	if _, err := cs.CoordinationV1().Leases("drmfilter").Get(ctx, "other", metav1.GetOptions{}); err != nil {
		t.Errorf("a Lease without drmfilter's label was deleted: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "drmfilter", metav1.GetOptions{}); err != nil {
		t.Errorf("--keep-namespace: %v", err)
	}

	removed, err = Undeploy(ctx, cs, UndeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"namespace/drmfilter"}) {
		t.Errorf("second undeploy removed %v", removed)
	}
	removed, err = Undeploy(ctx, cs, UndeployOptions{})
	if err != nil || len(removed) != 0 {
		t.Errorf("third undeploy: %v, %v", removed, err)
	}
}

func TestUndeployKeepsANamespaceItDidNotMake(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	// The namespace existed before deploy, made by someone else.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-x", Labels: map[string]string{"team": "x"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	m, err := Build(Options{Namespace: "team-x"}, testPolicies(t, onePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cs, m, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	if _, err := Undeploy(ctx, cs, UndeployOptions{Namespace: "team-x", Report: func(l string) { lines = append(lines, l) }}); err != nil {
		t.Fatal(err)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "namespace/team-x kept: it was not made by deploy alone (also written by kubectl-create)") {
		t.Errorf("last line %q", last)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "team-x", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace deleted: %v", err)
	}
}

// buildNoPodReader is the manifest of a deploy with --watch-pods=false.
func buildNoPodReader(t *testing.T, ns string) *Manifest {
	t.Helper()
	m, err := Build(Options{Namespace: ns, Image: "registry.example/drmfilter:test", NoPodReader: true}, testPolicies(t, onePolicy))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestApplyWithoutPodReaderDeletesOnlyWhatDeployMade(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()

	// A first deploy without the pod reader mentions no pod reader.
	res, err := Apply(ctx, cs, buildNoPodReader(t, "drmfilter"), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res); strings.Contains(got, "clusterrole") || strings.Count(got, " created\n") != 6 {
		t.Errorf("deploy without the pod reader:\n%s", got)
	}

	// With it, then without it again: both are deleted, binding first,
	// and nothing else is written.
	if _, err := Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	n := len(cs.Actions())
	res, err = Apply(ctx, cs, buildNoPodReader(t, "drmfilter"), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(cs, n); !slices.Equal(w, []string{"delete clusterrolebindings/drmfilter-agent-pods", "delete clusterroles/drmfilter-agent-pods"}) {
		t.Errorf("redeploy without the pod reader wrote %v", w)
	}
	if got := actions(res); !strings.Contains(got, "rolebinding/drmfilter-agent unchanged\nclusterrolebinding/drmfilter-agent-pods deleted\nclusterrole/drmfilter-agent-pods deleted\nconfigmap/") {
		t.Errorf("redeploy without the pod reader:\n%s", got)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "drmfilter-agent-pods", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("clusterrole after the redeploy: %v", err)
	}

	// Objects of that name that deploy did not make stay.
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "drmfilter-agent-pods"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n = len(cs.Actions())
	res, err = Apply(ctx, cs, buildNoPodReader(t, "drmfilter"), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(cs, n); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}
	var kept *Result
	for i := range res {
		if res[i].Ref == "clusterrole/drmfilter-agent-pods" {
			kept = &res[i]
		}
	}
	if kept == nil || kept.Action != Kept || kept.Note != "it lacks the label app.kubernetes.io/managed-by=drmfilter that deploy sets" {
		t.Errorf("someone else's clusterrole: %+v", kept)
	}

	// Another namespace's deployment has its own pod reader, which this
	// one's removal leaves alone.
	other, err := Build(Options{Namespace: "security"}, testPolicies(t, onePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cs, other, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cs, buildNoPodReader(t, "drmfilter"), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	crb, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "drmfilter-agent-pods-security", metav1.GetOptions{})
	if err != nil || crb.Subjects[0].Namespace != "security" {
		t.Errorf("the other namespace's binding: %v", err)
	}
}

func TestApplyWithoutClusterRightsNeedsNoPodReader(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	// A namespace administrator: cluster-scoped RBAC objects are forbidden.
	for _, verb := range []string{"get", "patch", "delete"} {
		for _, res := range []string{"clusterroles", "clusterrolebindings"} {
			cs.PrependReactor(verb, res, func(k8stesting.Action) (bool, runtimeObject, error) {
				return true, nil, forbidden(res, "drmfilter-agent-pods")
			})
		}
	}
	_, err := Apply(ctx, cs, testManifest(t, onePolicy), ApplyOptions{})
	if !errors.Is(err, ErrPodReader) || !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), "read clusterrole/drmfilter-agent-pods: Forbidden: ") {
		t.Errorf("with the pod reader: %v", err)
	}

	res, err := Apply(ctx, cs, buildNoPodReader(t, "drmfilter"), ApplyOptions{})
	if err != nil {
		t.Fatalf("without the pod reader: %v", err)
	}
	got := actions(res)
	if !strings.Contains(got, "clusterrolebinding/drmfilter-agent-pods kept\nclusterrole/drmfilter-agent-pods kept\n") || !strings.HasSuffix(got, "daemonset/drmfilter-agent created\n") {
		t.Errorf("without the pod reader:\n%s", got)
	}
	if !strings.Contains(res[4].Note, "may not read it (Forbidden)") {
		t.Errorf("note %q", res[4].Note)
	}
	// And undeploy still removes the rest.
	removed, err := Undeploy(ctx, cs, UndeployOptions{})
	if err != nil || !slices.Contains(removed, "daemonset/drmfilter-agent") || !slices.Contains(removed, "namespace/drmfilter") {
		t.Errorf("undeploy: %v, %v", removed, err)
	}
}

func TestUndeployKeepsAPodReaderItDidNotMake(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if _, err := Apply(ctx, cs, buildNoPodReader(t, "drmfilter"), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "drmfilter-agent-pods", Labels: map[string]string{"team": "x"}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	if _, err := Undeploy(ctx, cs, UndeployOptions{Report: func(l string) { lines = append(lines, l) }}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(lines, "clusterrolebinding/drmfilter-agent-pods kept: it lacks the label app.kubernetes.io/managed-by=drmfilter that deploy sets") {
		t.Errorf("printed %v", lines)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "drmfilter-agent-pods", metav1.GetOptions{}); err != nil {
		t.Errorf("someone else's binding: %v", err)
	}
}
