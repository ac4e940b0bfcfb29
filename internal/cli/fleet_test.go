//go:build !nodeploy

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drmfilter/drmfilter/internal/deploy/kubernetes"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/testutil/kubeapi"
)

const (
	fleetNS      = "drmfilter"
	fleetDesired = "sha256:a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	fleetOlder   = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var fleetLabels = map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelComponent: kubeschema.LabelComponentAgent}

func fleetPod(node string, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "drmfilter-agent-" + node, Namespace: fleetNS, Labels: fleetLabels},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func fleetLease(t *testing.T, node, hash, policyErr string, renewed time.Time) *coordinationv1.Lease {
	t.Helper()
	v, err := kubeschema.NodeStatus{Node: node, Pod: "drmfilter-agent-" + node, AgentVersion: "v0.9.0", Ready: true, Mode: "enforce",
		PolicyHash: hash, PolicyError: policyErr, Hypervisor: "kvm", Cloud: "aws", UpdatedAt: renewed}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	holder, secs, rt := "drmfilter-agent-"+node, int32(90), metav1.NewMicroTime(renewed)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: kubeschema.NodeStatusName(node), Namespace: fleetNS,
			Labels:      map[string]string{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelNode: node},
			Annotations: map[string]string{kubeschema.AnnotationNodeStatus: v}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &rt},
	}
}

// smallFleet: node-1 is on the desired policy, node-2 runs an older one,
// node-3 is stale, node-4 rejected the newest policy, node-5's pod is not
// ready and node-6's pod has not published.
func smallFleet(t *testing.T) []runtime.Object {
	fresh := time.Now().Add(-5 * time.Second)
	return []runtime.Object{
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.DaemonSet, Namespace: fleetNS},
			Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: fleetLabels}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.PolicyConfigMap, Namespace: fleetNS,
			Annotations: map[string]string{kubeschema.AnnotationPolicyHash: fleetDesired}}},
		fleetPod("node-1", true), fleetLease(t, "node-1", fleetDesired, "", fresh),
		fleetPod("node-2", true), fleetLease(t, "node-2", fleetOlder, "", fresh),
		fleetPod("node-3", true), fleetLease(t, "node-3", fleetDesired, "", time.Now().Add(-10*time.Minute)),
		fleetPod("node-4", true), fleetLease(t, "node-4", fleetOlder, "p.yaml:4:15: spec.files: empty file selector", fresh),
		fleetPod("node-5", false), fleetLease(t, "node-5", fleetOlder, "", fresh),
		fleetPod("node-6", true),
	}
}

// fleetRun runs `fleet status args...` on client and returns the exit
// code and both streams.
func fleetRun(t *testing.T, ctx context.Context, client clientset.Interface, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut lockedBuffer
	cmd := newFleetStatusCommandWith(Streams{In: strings.NewReader(""), Out: &out, Err: &errOut}, func(kubernetes.ClientOptions) (clientset.Interface, error) {
		return client, nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(ctx)
	code := exitcode.OK
	if err != nil {
		code = exitcode.Usage
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.Write([]byte(err.Error() + "\n"))
	}
	return code, out.String(), errOut.String()
}

func TestFleetStatusTable(t *testing.T) {
	code, out, errOut := fleetRun(t, context.Background(), fake.NewClientset(smallFleet(t)...))
	if code != exitcode.OK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"NODE    POD                     PHASE    READY  VERSION  ENVIRONMENT  POLICY                 MODE     RESTARTS  AGE\n",
		"0123456789ab*",
		"10m (stale)",
		"node-6  drmfilter-agent-node-6  Running  yes    -        -            -",
		"node-4: policy rejected, the previous one stays in force: p.yaml:4:15: spec.files: empty file selector",
		"* not the desired policy a1b2c3d4e5f6",
		"policy a1b2c3d4e5f6 on 2/6 nodes; 1 not ready; 1 stale; 1 policy error; 1 without status\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFleetStatusJSON(t *testing.T) {
	code, out, errOut := fleetRun(t, context.Background(), fake.NewClientset(smallFleet(t)...), "-o", "json")
	if code != exitcode.OK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		DesiredPolicyHash string `json:"desiredPolicyHash"`
		Nodes             []struct {
			Node   string `json:"node"`
			Stale  bool   `json:"stale"`
			Status *struct {
				PolicyHash  string `json:"policyHash"`
				PolicyError string `json:"policyError"`
			} `json:"status"`
		} `json:"nodes"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if doc.DesiredPolicyHash != fleetDesired || len(doc.Nodes) != 6 || doc.Summary["stale"] != 1 || doc.Summary["withoutStatus"] != 1 {
		t.Fatalf("document %+v", doc)
	}
	if n := doc.Nodes[2]; n.Node != "node-3" || !n.Stale {
		t.Errorf("node-3: %+v", n)
	}
	if n := doc.Nodes[3]; n.Status == nil || n.Status.PolicyError == "" || n.Status.PolicyHash != fleetOlder {
		t.Errorf("node-4: %+v", n)
	}
	if n := doc.Nodes[5]; n.Node != "node-6" || n.Status != nil {
		t.Errorf("node-6: %+v", n)
	}
}

func TestFleetStatusWaitSucceedsOnceAgentsCatchUp(t *testing.T) {
	client := fake.NewClientset(smallFleet(t)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := fleetRun(t, ctx, client, "--wait", "--timeout", "1m")
		done <- result{code, out, errOut}
	}()
	// The agents catch up: node-2 and node-4 load the desired policy and
	// node-6 publishes.
	fresh := time.Now()
	leases := client.CoordinationV1().Leases(fleetNS)
	for _, node := range []string{"node-2", "node-4"} {
		if _, err := leases.Update(ctx, fleetLease(t, node, fleetDesired, "", fresh), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := leases.Create(ctx, fleetLease(t, "node-6", fleetDesired, "", fresh), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(50 * time.Second):
		t.Fatal("--wait did not return")
	}
	if r.code != exitcode.OK {
		t.Fatalf("exit %d:\n%s\n%s", r.code, r.out, r.errOut)
	}
	if !strings.Contains(r.out, "policy a1b2c3d4e5f6 on 5/6 nodes; 1 not ready; 1 stale\n") {
		t.Errorf("final table:\n%s", r.out)
	}
	// Progress, one plain line per change (not a terminal).
	if !strings.Contains(r.errOut, "/5 ready agents on policy a1b2c3d4e5f6] ") || !strings.Contains(r.errOut, "node-6") {
		t.Errorf("progress:\n%s", r.errOut)
	}
}

func TestFleetStatusWaitTimesOutNamingTheLaggards(t *testing.T) {
	code, out, errOut := fleetRun(t, context.Background(), fake.NewClientset(smallFleet(t)...), "--wait", "--timeout", "1s")
	if code != exitcode.Failure {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	want := "timed out after 1s: 3 ready agents do not report the desired policy a1b2c3d4e5f6: node-2 (policy 0123456789ab), " +
		"node-4 (policy 0123456789ab, rejected the newest: p.yaml:4:15: spec.files: empty file selector), node-6 (no status)"
	if !strings.Contains(errOut, want) {
		t.Fatalf("stderr lacks %q:\n%s", want, errOut)
	}
	if !strings.Contains(out, "policy a1b2c3d4e5f6 on 2/6 nodes") {
		t.Errorf("no final table:\n%s", out)
	}
}

func TestFleetStatusWatchPrintsChanges(t *testing.T) {
	client := fake.NewClientset(smallFleet(t)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	var out lockedBuffer
	go func() {
		cmd := newFleetStatusCommandWith(Streams{Out: &out, Err: &out}, func(kubernetes.ClientOptions) (clientset.Interface, error) { return client, nil })
		cmd.SetArgs([]string{"--watch"})
		err := cmd.ExecuteContext(ctx)
		done <- out.String() + errString(err)
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("output lacks %q:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("on 2/6 nodes")
	if _, err := client.CoordinationV1().Leases(fleetNS).Update(ctx, fleetLease(t, "node-2", fleetDesired, "", time.Now()), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("on 3/6 nodes")
	cancel()
	if got := <-done; strings.Count(got, "NODE ") != 2 {
		t.Errorf("want two tables, got:\n%s", got)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestFleetStatusRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-o", "yaml"}, {"--watch", "--wait"}, {"--wait", "--timeout", "0s"}} {
		code, _, errOut := fleetRun(t, context.Background(), fake.NewClientset(), args...)
		if code != exitcode.Usage {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
}

func TestFleetStatusWithoutACluster(t *testing.T) {
	code, _, errOut := run(t, "fleet", "status", "--kubeconfig", "/nonexistent/kubeconfig")
	if code != exitcode.Failure || !strings.Contains(errOut, "/nonexistent/kubeconfig") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestFleetStatusAgainstARealAPIServer reads a fleet through a kubeconfig
// file, as a user would, and waits (informers on a real watch) for an
// agent to catch up.
func TestFleetStatusAgainstARealAPIServer(t *testing.T) {
	srv := kubeapi.Start(t)
	admin, err := clientset.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := "fleet-it"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.DaemonSet, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: fleetLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: fleetLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "drmfilter:test"}}}}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.PolicyConfigMap, Namespace: ns,
		Annotations: map[string]string{kubeschema.AnnotationPolicyHash: fleetDesired}}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	for _, create := range []func() error{
		func() error {
			_, err := admin.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
			return err
		},
	} {
		if err := create(); err != nil {
			t.Fatal(err)
		}
	}
	// No kubelet: the test writes the pods' status.
	for _, node := range []string{"node-1", "node-2"} {
		p := fleetPod(node, true)
		p.Namespace = ns
		p.Spec.Containers = []corev1.Container{{Name: "agent", Image: "drmfilter:test"}}
		p.Spec.AutomountServiceAccountToken = new(false)
		st := p.Status
		if p, err = admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p.Status = st
		p.Status.Conditions[0].LastTransitionTime = metav1.Now()
		if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	leases := admin.CoordinationV1().Leases(ns)
	for node, hash := range map[string]string{"node-1": fleetDesired, "node-2": fleetOlder} {
		l := fleetLease(t, node, hash, "", time.Now())
		l.Namespace = ns
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := run(t, "fleet", "status", "--kubeconfig", srv.Kubeconfig, "-n", ns)
	if code != exitcode.OK || !strings.Contains(out, "policy a1b2c3d4e5f6 on 1/2 nodes\n") || !strings.Contains(out, "node-2  drmfilter-agent-node-2  Running  yes    v0.9.0   kvm/aws      0123456789ab*") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}

	done := make(chan int, 1)
	var wout, werr lockedBuffer
	go func() {
		done <- Main(ctx, []string{"fleet", "status", "--kubeconfig", srv.Kubeconfig, "-n", ns, "--wait", "--timeout", "1m", "-o", "json"},
			Streams{In: strings.NewReader(""), Out: &wout, Err: &werr})
	}()
	l, err := leases.Get(ctx, kubeschema.NodeStatusName("node-2"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fresh := fleetLease(t, "node-2", fleetDesired, "", time.Now())
	l.Annotations, l.Spec = fresh.Annotations, fresh.Spec
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case code = <-done:
	case <-time.After(50 * time.Second):
		t.Fatal("--wait did not return")
	}
	if code != exitcode.OK || !strings.Contains(wout.String(), `"policyCurrent": 2`) {
		t.Fatalf("--wait: exit %d\n%s\n%s", code, wout.String(), werr.String())
	}
}
