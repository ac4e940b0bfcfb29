package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

const (
	ns      = "drmfilter"
	desired = "sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	older   = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var now = time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)

var agentLabels = map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelComponent: kubeschema.LabelComponentAgent}

func pod(node string, ready bool, restarts int32) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "drmfilter-agent-" + node, Namespace: ns, Labels: agentLabels},
		Spec:       corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "agent", RestartCount: restarts}}},
	}
}

func lease(node, hash, policyErr string, renewed time.Time) *coordinationv1.Lease {
	st := kubeschema.NodeStatus{Node: node, Pod: "drmfilter-agent-" + node, AgentVersion: "v0.9.0", Ready: true, Mode: "enforce",
		PolicyHash: hash, PolicyGeneration: 2, PolicySource: kubeschema.SourceAPI, PolicyError: policyErr,
		Hypervisor: "kvm", Cloud: "azure", Container: "kubernetes", UpdatedAt: renewed}
	v, err := st.Encode()
	if err != nil {
		panic(err)
	}
	holder, secs, rt := st.Pod, int32(90), metav1.NewMicroTime(renewed)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: kubeschema.NodeStatusName(node), Namespace: ns,
			Labels:      map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelNode: node},
			Annotations: map[string]string{kubeschema.AnnotationNodeStatus: v}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &rt},
	}
}

// fleetObjects is a fleet of seven nodes: a is fine, b is stale, c's pod is
// not ready, d runs an older policy, e rejected the newest policy, f has
// not published, g has a Lease but no pod.
func fleetObjects() []runtime.Object {
	fresh := now.Add(-10 * time.Second)
	return []runtime.Object{
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.DaemonSet, Namespace: ns},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: agentLabels}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.PolicyConfigMap, Namespace: ns,
			Annotations: map[string]string{kubeschema.AnnotationPolicyHash: desired}}},
		// A pod of something else in the namespace is not an agent.
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns}, Spec: corev1.PodSpec{NodeName: "node-a"}},
		pod("node-a", true, 0), lease("node-a", desired, "", fresh),
		pod("node-b", true, 0), lease("node-b", desired, "", now.Add(-5*time.Minute)),
		pod("node-c", false, 3), lease("node-c", desired, "", fresh),
		pod("node-d", true, 0), lease("node-d", older, "", fresh),
		pod("node-e", true, 1), lease("node-e", desired, "bad.yaml:4:15: spec.files: empty file selector", fresh),
		pod("node-f", true, 0),
		lease("node-g", desired, "", fresh),
	}
}

func fetch(t *testing.T, objs ...runtime.Object) *Report {
	t.Helper()
	s, err := Fetch(context.Background(), fake.NewClientset(objs...), ns)
	if err != nil {
		t.Fatal(err)
	}
	return Build(s, now)
}

func TestReportJoinsPodsAndLeases(t *testing.T) {
	r := fetch(t, fleetObjects()...)
	want := Summary{Nodes: 7, PolicyCurrent: 5, NotReady: 1, Stale: 1, PolicyErrors: 1, WithoutStatus: 1, WithoutPod: 1}
	if r.Summary != want {
		t.Fatalf("summary %+v, want %+v", r.Summary, want)
	}
	if got := r.Line(); got != "policy a1b2c3d4e5f6 on 5/7 nodes; 1 not ready; 1 stale; 1 policy error; 1 without status; 1 without agent pod" {
		t.Fatalf("line %q", got)
	}
	var lag []string
	for _, n := range r.Lagging() {
		lag = append(lag, n.Node)
	}
	if strings.Join(lag, ",") != "node-d,node-f" || r.Converged() {
		t.Fatalf("lagging %v, converged %v", lag, r.Converged())
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := fetch(t, fleetObjects()...).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix+" ") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		t.Fatalf("no row %s in:\n%s", prefix, out)
		return ""
	}
	for row, want := range map[string]string{
		"NODE":   "NODE POD PHASE READY VERSION ENVIRONMENT POLICY MODE RESTARTS AGE",
		"node-a": "node-a drmfilter-agent-node-a Running yes v0.9.0 kvm/azure a1b2c3d4e5f6 enforce 0 10s",
		"node-b": "node-b drmfilter-agent-node-b Running yes v0.9.0 kvm/azure a1b2c3d4e5f6 enforce 0 5m (stale)",
		"node-c": "node-c drmfilter-agent-node-c Running no v0.9.0 kvm/azure a1b2c3d4e5f6 enforce 3 10s",
		"node-d": "node-d drmfilter-agent-node-d Running yes v0.9.0 kvm/azure 0123456789ab* enforce 0 10s",
		"node-e": "node-e drmfilter-agent-node-e Running yes v0.9.0 kvm/azure a1b2c3d4e5f6 (error) enforce 1 10s",
		"node-f": "node-f drmfilter-agent-node-f Running yes - - - - 0 no status",
		"node-g": "node-g - - - v0.9.0 kvm/azure a1b2c3d4e5f6 enforce - 10s",
	} {
		if got := fields(row); got != want {
			t.Errorf("row %s:\n got %s\nwant %s", row, got, want)
		}
	}
	for _, want := range []string{
		"* not the desired policy a1b2c3d4e5f6\n",
		"node-e: policy rejected, the previous one stays in force: bad.yaml:4:15: spec.files: empty file selector\n",
		"policy a1b2c3d4e5f6 on 5/7 nodes;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestJSONIsStable(t *testing.T) {
	r := fetch(t, fleetObjects()...)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Namespace         string `json:"namespace"`
		DesiredPolicyHash string `json:"desiredPolicyHash"`
		Nodes             []map[string]any
		Summary           map[string]int
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Namespace != ns || doc.DesiredPolicyHash != desired || len(doc.Nodes) != 7 || doc.Summary["withoutPod"] != 1 || doc.Summary["policyCurrent"] != 5 {
		t.Fatalf("document %+v", doc)
	}
	d := doc.Nodes[3]
	st, _ := d["status"].(map[string]any)
	if d["node"] != "node-d" || d["policyCurrent"] != false || d["ready"] != true || d["stale"] != false || st["policyHash"] != older || st["agentVersion"] != "v0.9.0" {
		t.Fatalf("node-d %v", d)
	}
	if f := doc.Nodes[5]; f["node"] != "node-f" || f["status"] != nil {
		t.Fatalf("node-f %v", f)
	}
	if g := doc.Nodes[6]; g["node"] != "node-g" || g["pod"] != nil {
		t.Fatalf("node-g %v", g)
	}
}

func TestEmptyAndUndeployedNamespaces(t *testing.T) {
	r := fetch(t)
	if r.Line() != "no drmfilter agents in namespace drmfilter" || r.Converged() {
		t.Fatalf("empty: %q", r.Line())
	}
	// Without ConfigMap and DaemonSet, the agents' own labels still find
	// the pods, and the desired policy is unknown.
	r = fetch(t, pod("node-a", true, 0), lease("node-a", desired, "", now))
	if len(r.Nodes) != 1 || r.Nodes[0].Pod == "" || !strings.HasPrefix(r.Line(), "desired policy unknown") || r.Converged() {
		t.Fatalf("undeployed: %+v %q", r.Nodes, r.Line())
	}
}

func TestWatchReportsChanges(t *testing.T) {
	client := fake.NewClientset(fleetObjects()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reports := make(chan *Report)
	errc := make(chan error, 1)
	go func() {
		errc <- Watch(ctx, client, ns, WatchOptions{Now: func() time.Time { return now }}, func(r *Report) bool {
			reports <- r
			return r.Converged()
		})
	}()
	first := <-reports
	if first.Summary.PolicyCurrent != 5 {
		t.Fatalf("first report %+v", first.Summary)
	}
	// A renewal alone is no change; node-d loading the desired policy and
	// node-f publishing are.
	for _, l := range []*coordinationv1.Lease{lease("node-a", desired, "", now.Add(-time.Second)), lease("node-d", desired, "", now), lease("node-f", desired, "", now)} {
		if _, err := client.CoordinationV1().Leases(ns).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			if _, err := client.CoordinationV1().Leases(ns).Create(ctx, l, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var last *Report
	for last == nil || !last.Converged() {
		select {
		case last = <-reports:
		case err := <-errc:
			t.Fatalf("watch ended: %v", err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if last.Summary.PolicyCurrent != 7 || last.Summary.WithoutStatus != 0 {
		t.Fatalf("last report %+v", last.Summary)
	}
}
