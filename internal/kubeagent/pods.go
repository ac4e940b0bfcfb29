package kubeagent

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The labels the kubelet adds to every pod sandbox, which the container
// runtime reports with the pod's own labels. PodLabels adds them too, so
// that a policy sees the same label set wherever the labels came from.
const (
	kubeletPodName      = "io.kubernetes.pod.name"
	kubeletPodNamespace = "io.kubernetes.pod.namespace"
	kubeletPodUID       = "io.kubernetes.pod.uid"
)

// PodLabels keeps the current labels of the pods on one node, from a
// watch of the API server. The container runtime knows a pod's labels only
// as they were when the pod was created; a label changed later (kubectl
// label) reaches the agent's decisions through here. Lookups never wait on
// the API server: a pod not seen yet is answered from the runtime.
type PodLabels struct {
	client kubernetes.Interface
	node   string
	log    *slog.Logger

	mu    sync.RWMutex
	byUID map[string]map[string]string // pod UID -> labels (never modified once stored)
}

// podsRecheckMax bounds the interval at which Run asks again whether it
// may read pods.
const podsRecheckMax = 5 * time.Minute

// NewPodLabels prepares the labels of node's pods; nothing is requested
// before Run.
func NewPodLabels(client kubernetes.Interface, node string, log *slog.Logger) *PodLabels {
	if log == nil {
		log = slog.Default()
	}
	return &PodLabels{client: client, node: node, log: log, byUID: map[string]map[string]string{}}
}

// Labels returns the current labels of the pod with uid, and false when
// the pod is not known from the API server (not seen yet, or the agent may
// not read pods): the caller then uses the runtime's labels.
func (p *PodLabels) Labels(uid string) (map[string]string, bool) {
	p.mu.RLock()
	l, ok := p.byUID[uid]
	p.mu.RUnlock()
	return l, ok
}

// Run watches the node's pods until ctx is done. While the agent may not
// list pods (deployed without the pod reader ClusterRole, or started
// before its binding reached the API server's authorizer), it says so once
// and asks again, at growing intervals up to podsRecheckMax: decisions
// use the runtime's labels until it may.
func (p *PodLabels) Run(ctx context.Context) {
	onNode := fields.OneTermEqualSelector("spec.nodeName", p.node).String()
	pods := p.client.CoreV1().Pods(metav1.NamespaceAll)
	for wait, said := time.Second, false; ; wait = min(2*wait, podsRecheckMax) {
		_, err := pods.List(ctx, metav1.ListOptions{FieldSelector: onNode, Limit: 1})
		if !apierrors.IsForbidden(err) {
			if said {
				p.log.Info("pods may be read now: policies follow pod label changes")
			}
			break
		}
		if !said {
			p.log.Info("no permission to read pods: policies see pod labels as they were when each pod was created (deploy with --watch-pods to follow label changes); asking again from time to time", "error", err)
			said = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = onNode
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = onNode
			return pods.Watch(ctx, o)
		},
	}
	// The wrapper tells the reflector whether the client can stream its
	// initial list (a real clientset can; the fake clientset cannot).
	inf := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, p.client),
		&corev1.Pod{}, cache.SharedIndexInformerOptions{})
	// Keep only what the labels need: a node's pods carry large specs.
	if err := inf.SetTransform(slimPod); err != nil {
		p.log.Warn("pod watch: keeping whole pods", "error", err)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    p.store,
		UpdateFunc: func(_, obj any) { p.store(obj) },
		DeleteFunc: p.remove,
	}); err != nil {
		p.log.Error("pod watch not started", "error", err)
		return
	}
	inf.RunWithContext(ctx)
}

// slimPod drops all of a pod but its identity, labels and node.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: its key is all that is used
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, Labels: pod.Labels, ResourceVersion: pod.ResourceVersion},
		Spec:       corev1.PodSpec{NodeName: pod.Spec.NodeName},
	}, nil
}

func (p *PodLabels) store(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != p.node {
		return
	}
	l := make(map[string]string, len(pod.Labels)+3)
	maps.Copy(l, pod.Labels)
	l[kubeletPodName], l[kubeletPodNamespace], l[kubeletPodUID] = pod.Name, pod.Namespace, string(pod.UID)
	p.mu.Lock()
	p.byUID[string(pod.UID)] = l
	p.mu.Unlock()
}

func (p *PodLabels) remove(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	p.mu.Lock()
	delete(p.byUID, string(pod.UID))
	p.mu.Unlock()
}
