package kubeagent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// fakeStatus is an agent status the test changes.
type fakeStatus struct {
	mu sync.Mutex
	st agent.Status
}

func (f *fakeStatus) get() agent.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeStatus) set(fn func(*agent.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

func getLease(t *testing.T, c kubernetes.Interface, ns, node string) (*coordinationv1.Lease, kubeschema.NodeStatus) {
	t.Helper()
	l, err := c.CoordinationV1().Leases(ns).Get(context.Background(), kubeschema.NodeStatusName(node), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kubeschema.DecodeNodeStatus(l.Annotations[kubeschema.AnnotationNodeStatus])
	if err != nil {
		t.Fatal(err)
	}
	return l, st
}

func TestPublisherCreatesThenUpdatesTheLease(t *testing.T) {
	client := fake.NewClientset()
	status := &fakeStatus{st: agent.Status{Version: "v1.2.3", Ready: true, Mode: "enforce",
		Policy:      agent.PolicyStatus{Hash: "sha256:aaaa", Generation: 1},
		Environment: agent.EnvSummary{Hypervisor: "kvm", Cloud: "azure", Container: "kubernetes"}}}
	now := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p, err := NewStatusPublisher(PublisherOptions{Client: client, Namespace: "ns1", Node: "node-a", Pod: "drmfilter-agent-x1",
		Status: status.get, Source: func() string { return kubeschema.SourceAPI }, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, st := getLease(t, client, "ns1", "node-a")
	want := kubeschema.NodeStatus{Node: "node-a", Pod: "drmfilter-agent-x1", AgentVersion: "v1.2.3", Ready: true, Mode: "enforce",
		PolicyHash: "sha256:aaaa", PolicyGeneration: 1, PolicySource: kubeschema.SourceAPI,
		Hypervisor: "kvm", Cloud: "azure", Container: "kubernetes", UpdatedAt: now}
	if st != want {
		t.Fatalf("published %+v\nwant %+v", st, want)
	}
	if *l.Spec.HolderIdentity != "drmfilter-agent-x1" || *l.Spec.LeaseDurationSeconds != 90 || !l.Spec.RenewTime.Time.Equal(now) ||
		l.Labels[kubeschema.LabelNode] != "node-a" || l.Labels[kubeschema.LabelName] != kubeschema.LabelNameValue {
		t.Fatalf("lease spec %+v labels %v", l.Spec, l.Labels)
	}
	acquired := l.Spec.AcquireTime.Time

	now = now.Add(30 * time.Second)
	status.set(func(s *agent.Status) {
		s.Policy = agent.PolicyStatus{Hash: "sha256:aaaa", Generation: 1, Error: "p.yaml:4:15: spec.files: empty file selector"}
	})
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, st = getLease(t, client, "ns1", "node-a")
	if st.PolicyError != "p.yaml:4:15: spec.files: empty file selector" || st.PolicyHash != "sha256:aaaa" || !st.UpdatedAt.Equal(now) {
		t.Fatalf("after the update: %+v", st)
	}
	if !l.Spec.RenewTime.Time.Equal(now) || !l.Spec.AcquireTime.Time.Equal(acquired) || l.Spec.LeaseTransitions != nil {
		t.Fatalf("after the update: renew %v acquire %v transitions %v", l.Spec.RenewTime, l.Spec.AcquireTime, l.Spec.LeaseTransitions)
	}

	// A new pod on the node takes the Lease over.
	p2, err := NewStatusPublisher(PublisherOptions{Client: client, Namespace: "ns1", Node: "node-a", Pod: "drmfilter-agent-x2", Status: status.get, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, st = getLease(t, client, "ns1", "node-a")
	if st.Pod != "drmfilter-agent-x2" || *l.Spec.HolderIdentity != "drmfilter-agent-x2" || l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Fatalf("after a new pod: %+v %+v", st, l.Spec)
	}
}

func TestPublisherRunPublishesChangesAndItsStop(t *testing.T) {
	client := fake.NewClientset()
	status := &fakeStatus{st: agent.Status{Policy: agent.PolicyStatus{Hash: "sha256:aaaa", Generation: 1}}}
	p, err := NewStatusPublisher(PublisherOptions{Client: client, Node: "n", Status: status.get, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	published := func() kubeschema.NodeStatus {
		l, err := client.CoordinationV1().Leases(kubeschema.DefaultNamespace).Get(context.Background(), p.LeaseName(), metav1.GetOptions{})
		if err != nil {
			return kubeschema.NodeStatus{}
		}
		st, _ := kubeschema.DecodeNodeStatus(l.Annotations[kubeschema.AnnotationNodeStatus])
		return st
	}
	eventually(t, "the first publication", func() bool { return published().PolicyHash == "sha256:aaaa" })
	// The agent becomes ready (its fanotify marks are in place): published
	// long before the hour-long interval.
	status.set(func(s *agent.Status) { s.Ready = true })
	eventually(t, "the agent ready", func() bool { return published().Ready })
	cancel()
	<-done
	if st := published(); st.Ready || st.PolicyHash != "sha256:aaaa" {
		t.Fatalf("after the stop: %+v", st)
	}
}

func TestPublisherRetriesAConflict(t *testing.T) {
	client := fake.NewClientset()
	status := &fakeStatus{st: agent.Status{Policy: agent.PolicyStatus{Hash: "sha256:aaaa"}}}
	p, err := NewStatusPublisher(PublisherOptions{Client: client, Node: "n", Status: status.get})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	conflicts := 0
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts < 2 {
			conflicts++
			return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), "drmfilter-node-n", nil)
		}
		return false, nil, nil
	})
	status.set(func(s *agent.Status) { s.Policy.Hash = "sha256:bbbb" })
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, st := getLease(t, client, kubeschema.DefaultNamespace, "n"); st.PolicyHash != "sha256:bbbb" || conflicts != 2 {
		t.Fatalf("hash %s after %d conflicts", st.PolicyHash, conflicts)
	}
}

func TestPublisherSaysOnceThatRBACForbidsTheLease(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(coordinationv1.Resource("leases"), "drmfilter-node-n", nil)
	})
	logs := &logBuffer{}
	p, err := NewStatusPublisher(PublisherOptions{Client: client, Node: "n", Status: (&fakeStatus{}).get, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Publish(context.Background()); !apierrors.IsForbidden(err) {
			t.Fatalf("got %v, want a Forbidden error", err)
		}
	}
	if n := strings.Count(logs.String(), "forbids writing the node status Lease"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestPublisherNeedsTheNodeName(t *testing.T) {
	_, err := NewStatusPublisher(PublisherOptions{Client: fake.NewClientset(), Status: (&fakeStatus{}).get})
	if err == nil || !strings.Contains(err.Error(), "DRMFILTER_NODE_NAME") {
		t.Fatalf("got %v", err)
	}
}

// TestNodeReportsARejectedConfigMap runs the whole in-cluster side with a
// real agent: the Lease carries the loaded hash; a ConfigMap that fails
// validation is not applied and its error is published; a good one
// replaces it.
func TestNodeReportsARejectedConfigMap(t *testing.T) {
	ns := "drmfilter"
	good := map[string]string{"p.yaml": policyYAML("good")}
	client := fake.NewClientset(policyConfigMap(ns, good))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Start(ctx, Options{Client: client, Namespace: ns, Node: "node-a", Pod: "pod-a", PolicyPaths: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, n.Sources)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, a) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	lease := func() kubeschema.NodeStatus {
		l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), kubeschema.NodeStatusName("node-a"), metav1.GetOptions{})
		if err != nil {
			return kubeschema.NodeStatus{}
		}
		st, _ := kubeschema.DecodeNodeStatus(l.Annotations[kubeschema.AnnotationNodeStatus])
		return st
	}
	eventually(t, "the first publication", func() bool { return lease().PolicyHash == hashOf(t, good) })
	if st := lease(); st.PolicySource != kubeschema.SourceAPI || st.PolicyGeneration != 1 || st.PolicyError != "" {
		t.Fatalf("first publication %+v", st)
	}

	update := func(data map[string]string) {
		t.Helper()
		if _, err := client.CoreV1().ConfigMaps(ns).Update(context.Background(), policyConfigMap(ns, data), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	update(map[string]string{"p.yaml": badPolicyYAML})
	eventually(t, "the policy error", func() bool { return lease().PolicyError != "" })
	st := lease()
	if st.PolicyHash != hashOf(t, good) || !strings.Contains(st.PolicyError, "p.yaml:4:15: spec.files: empty file selector") {
		t.Fatalf("after a bad ConfigMap: %+v", st)
	}
	better := map[string]string{"p.yaml": policyYAML("better")}
	update(better)
	eventually(t, "the new policy", func() bool { return lease().PolicyHash == hashOf(t, better) })
	if st := lease(); st.PolicyError != "" || st.PolicyGeneration != 2 {
		t.Fatalf("after a good ConfigMap: %+v", st)
	}
}
