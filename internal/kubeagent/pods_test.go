package kubeagent

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func testPod(name, node, uid string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "payments", UID: types.UID(uid), Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/api:1"}}},
	}
}

func TestPodLabelsFollowTheNodesPods(t *testing.T) {
	cs := fake.NewClientset(
		testPod("api-0", "node-1", "uid-a", map[string]string{"app": "api", "tier": "backend"}),
		testPod("web-0", "node-2", "uid-b", map[string]string{"app": "web"}),
	)
	p := NewPodLabels(cs, "node-1", nil)
	run(t, p.Run)

	want := map[string]string{"app": "api", "tier": "backend",
		"io.kubernetes.pod.name": "api-0", "io.kubernetes.pod.namespace": "payments", "io.kubernetes.pod.uid": "uid-a"}
	eventually(t, "the node's pod to be known", func() bool {
		l, ok := p.Labels("uid-a")
		return ok && maps.Equal(l, want)
	})
	if l, ok := p.Labels("uid-b"); ok {
		t.Errorf("a pod of another node is known: %v", l)
	}
	// Every list and watch asks for this node's pods only.
	for _, a := range cs.Actions() {
		if a.GetResource().Resource != "pods" || (a.GetVerb() != "list" && a.GetVerb() != "watch") {
			continue
		}
		var sel string
		switch a := a.(type) {
		case k8stesting.ListAction:
			sel = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchAction:
			sel = a.GetWatchRestrictions().Fields.String()
		}
		if sel != "spec.nodeName=node-1" {
			t.Errorf("%s of pods with field selector %q, want spec.nodeName=node-1", a.GetVerb(), sel)
		}
	}

	// kubectl label pod api-0 tier=frontend --overwrite
	pod := testPod("api-0", "node-1", "uid-a", map[string]string{"app": "api", "tier": "frontend"})
	if _, err := cs.CoreV1().Pods("payments").Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new label", func() bool {
		l, _ := p.Labels("uid-a")
		return l["tier"] == "frontend"
	})
	if err := cs.CoreV1().Pods("payments").Delete(context.Background(), "api-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted pod to be forgotten", func() bool {
		_, ok := p.Labels("uid-a")
		return !ok
	})
}

func TestPodLabelsWithoutPermissionFallBackToTheRuntime(t *testing.T) {
	cs := fake.NewClientset(testPod("api-0", "node-1", "uid-a", map[string]string{"app": "api"}))
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`cannot list resource "pods" at the cluster scope`))
	})
	var logs logBuffer
	p := NewPodLabels(cs, "node-1", logs.logger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx) // asks again from time to time, until ctx is done
	}()
	eventually(t, "the agent saying it may not read pods", func() bool { return strings.Contains(logs.String(), "no permission to read pods") })
	if _, ok := p.Labels("uid-a"); ok {
		t.Error("labels known without permission to read pods")
	}
	cancel()
	<-done
	if n := strings.Count(logs.String(), "no permission to read pods"); n != 1 {
		t.Errorf("said %d times, want once:\n%s", n, logs.String())
	}
}
