// Package fleet reads back what the agents of a Kubernetes cluster report:
// it joins the pods of the drmfilter DaemonSet with the per-node status
// Leases the agents publish (package kubeschema has the contract) and the
// desired policy hash of the policy ConfigMap, into one row per node and a
// summary. `drmfilter fleet status` prints it.
//
// Files:
//   - report.go: Snapshot (the objects read), Report, Build.
//   - fetch.go: Fetch, one read through the API server.
//   - table.go: the table and the summary line.
//   - watch.go: Watch, a Report after every change, through informers.
package fleet

import (
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// Snapshot is what a report is built from.
type Snapshot struct {
	Namespace string
	// DaemonSet is nil when drmfilter is not deployed.
	DaemonSet *appsv1.DaemonSet
	// ConfigMap is the policy ConfigMap, nil when missing.
	ConfigMap *corev1.ConfigMap
	// Pods are the DaemonSet's pods.
	Pods []corev1.Pod
	// Leases are the nodes' status Leases.
	Leases []coordinationv1.Lease
}

// Report is the state of the fleet. Its JSON form is stable (see the help
// of `drmfilter fleet status`).
type Report struct {
	Namespace string `json:"namespace"`
	// DesiredPolicyHash is the policy hash of the ConfigMap ("" if unknown).
	DesiredPolicyHash string    `json:"desiredPolicyHash"`
	Time              time.Time `json:"time"`
	Nodes             []Node    `json:"nodes"`
	Summary           Summary   `json:"summary"`
}

// Node is one row: a node with its agent pod, its status Lease, or both.
type Node struct {
	Node string `json:"node"`
	// Pod, Phase, Ready and Restarts describe the agent's pod; Pod is
	// empty when the node has a status Lease but no pod.
	Pod      string `json:"pod,omitempty"`
	Phase    string `json:"phase,omitempty"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	// Status is what the agent published; nil when it published nothing.
	Status *kubeschema.NodeStatus `json:"status,omitempty"`
	// StatusError says why a published status could not be read.
	StatusError string `json:"statusError,omitempty"`
	// RenewTime is the agent's last publication.
	RenewTime *time.Time `json:"renewTime,omitempty"`
	// Stale: no publication for longer than the Lease's duration.
	Stale bool `json:"stale"`
	// PolicyCurrent: the agent reports the desired policy hash.
	PolicyCurrent bool `json:"policyCurrent"`
}

// Summary counts the rows.
type Summary struct {
	Nodes         int `json:"nodes"`
	PolicyCurrent int `json:"policyCurrent"`
	NotReady      int `json:"notReady"`
	Stale         int `json:"stale"`
	PolicyErrors  int `json:"policyErrors"`
	WithoutStatus int `json:"withoutStatus"`
	WithoutPod    int `json:"withoutPod"`
}

// Build joins a snapshot into a report as of now.
func Build(s *Snapshot, now time.Time) *Report {
	r := &Report{Namespace: s.Namespace, Time: now.UTC(), Nodes: []Node{}}
	if s.ConfigMap != nil {
		r.DesiredPolicyHash = s.ConfigMap.Annotations[kubeschema.AnnotationPolicyHash]
	}
	leases := map[string]*coordinationv1.Lease{}
	for i := range s.Leases {
		l := &s.Leases[i]
		if node := leaseNode(l); node != "" {
			leases[node] = l
		}
	}
	// One pod per node: the one holding the node's Lease, else the newest
	// (a rolling update briefly has two).
	pods := map[string]*corev1.Pod{}
	var unscheduled []*corev1.Pod
	for i := range s.Pods {
		p := &s.Pods[i]
		node := p.Spec.NodeName
		if node == "" {
			unscheduled = append(unscheduled, p)
			continue
		}
		if cur, ok := pods[node]; ok && !betterPod(p, cur, leases[node]) {
			continue
		}
		pods[node] = p
	}
	for node, p := range pods {
		r.Nodes = append(r.Nodes, r.row(node, p, leases[node], now))
	}
	for node, l := range leases {
		if pods[node] == nil {
			r.Nodes = append(r.Nodes, r.row(node, nil, l, now))
		}
	}
	for _, p := range unscheduled {
		r.Nodes = append(r.Nodes, r.row("", p, nil, now))
	}
	slices.SortFunc(r.Nodes, func(a, b Node) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Pod, b.Pod)
	})
	for _, n := range r.Nodes {
		r.Summary.Nodes++
		if n.PolicyCurrent {
			r.Summary.PolicyCurrent++
		}
		if n.Pod != "" && !n.Ready {
			r.Summary.NotReady++
		}
		if n.Stale {
			r.Summary.Stale++
		}
		if n.Status != nil && n.Status.PolicyError != "" {
			r.Summary.PolicyErrors++
		}
		if n.Pod != "" && n.Status == nil && n.StatusError == "" {
			r.Summary.WithoutStatus++
		}
		if n.Pod == "" {
			r.Summary.WithoutPod++
		}
	}
	return r
}

func (r *Report) row(node string, p *corev1.Pod, l *coordinationv1.Lease, now time.Time) Node {
	n := Node{Node: node}
	if p != nil {
		n.Pod, n.Phase, n.Ready = p.Name, string(p.Status.Phase), podReady(p)
		for _, c := range p.Status.ContainerStatuses {
			n.Restarts += c.RestartCount
		}
	}
	if l == nil {
		return n
	}
	if v, ok := l.Annotations[kubeschema.AnnotationNodeStatus]; ok {
		if st, err := kubeschema.DecodeNodeStatus(v); err != nil {
			n.StatusError = err.Error()
		} else {
			n.Status = &st
			n.PolicyCurrent = r.DesiredPolicyHash != "" && st.PolicyHash == r.DesiredPolicyHash
		}
	} else {
		n.StatusError = "the Lease has no " + kubeschema.AnnotationNodeStatus + " annotation"
	}
	n.Stale = true
	if rt := l.Spec.RenewTime; rt != nil {
		t := rt.Time.UTC()
		n.RenewTime = &t
		var d time.Duration
		if l.Spec.LeaseDurationSeconds != nil {
			d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		n.Stale = t.Add(d).Before(now)
	}
	return n
}

// leaseNode is the node a status Lease is about.
func leaseNode(l *coordinationv1.Lease) string {
	if n := l.Labels[kubeschema.LabelNode]; n != "" {
		return n
	}
	if n, ok := strings.CutPrefix(l.Name, kubeschema.NodeStatusPrefix); ok {
		return n
	}
	return ""
}

// betterPod reports whether p, rather than cur, is the node's agent pod.
func betterPod(p, cur *corev1.Pod, l *coordinationv1.Lease) bool {
	if l != nil && l.Spec.HolderIdentity != nil {
		if h := *l.Spec.HolderIdentity; h == p.Name || h == cur.Name {
			return h == p.Name
		}
	}
	return p.CreationTimestamp.After(cur.CreationTimestamp.Time)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Lagging returns the rows whose pod is ready but whose agent does not
// report the desired policy.
func (r *Report) Lagging() []Node {
	var out []Node
	for _, n := range r.Nodes {
		if n.Pod != "" && n.Ready && !n.PolicyCurrent {
			out = append(out, n)
		}
	}
	return out
}

// Converged reports whether the desired policy is known, at least one
// agent is ready, and every ready agent reports the desired policy.
func (r *Report) Converged() bool {
	ready := 0
	for _, n := range r.Nodes {
		if n.Pod != "" && n.Ready {
			ready++
		}
	}
	return r.DesiredPolicyHash != "" && ready > 0 && len(r.Lagging()) == 0
}
