// Package kubeschema is the contract between the three Kubernetes parts of
// drmfilter: `drmfilter deploy kubernetes` (which creates the objects),
// the agent running in the cluster (which reads its policy ConfigMap and
// publishes its node's status) and `drmfilter fleet status` (which reads
// them back). It holds object names, labels, annotations and the per-node
// status record, and imports no Kubernetes library so that every side can
// use it.
//
// Per-node status lives in one coordination.k8s.io/v1 Lease per node, named
// NodeStatusName(node), in the agent's namespace: the Lease's holderIdentity
// is the agent's pod, renewTime is the last publication and
// leaseDurationSeconds says when a silent agent counts as stale; the
// NodeStatus record is JSON in the AnnotationNodeStatus annotation.
package kubeschema

import (
	"encoding/json"
	"fmt"
	"time"
)

// Object names and the field manager of server-side apply.
const (
	DefaultNamespace = "drmfilter"
	FieldManager     = "drmfilter"
	// PolicyConfigMap carries the policies: one key per policy file.
	PolicyConfigMap = "drmfilter-policies"
	ServiceAccount  = "drmfilter-agent"
	DaemonSet       = "drmfilter-agent"
	// AgentRole names the Role and RoleBinding of the agent.
	AgentRole = "drmfilter-agent"
	// AgentPodReader names the ClusterRole and ClusterRoleBinding that let
	// the agent read pods (get, list, watch): it watches the pods of its
	// own node (field selector spec.nodeName) for their current labels,
	// which the container runtime only knows as they were at pod creation.
	// RBAC cannot limit the grant to one node; an agent without it uses the
	// runtime's labels.
	AgentPodReader = "drmfilter-agent-pods"
	// NodeStatusPrefix starts the name of every node's status Lease.
	NodeStatusPrefix = "drmfilter-node-"
)

// Labels and annotations.
const (
	LabelName           = "app.kubernetes.io/name"
	LabelNameValue      = "drmfilter"
	LabelComponent      = "app.kubernetes.io/component"
	LabelComponentAgent = "agent"
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	LabelManagedByValue = "drmfilter"
	// LabelNode on a status Lease names its node.
	LabelNode = "drmfilter.dev/node"
	// AnnotationPolicyHash on the policy ConfigMap is the desired policy
	// hash (policy.Set.Hash of the ConfigMap's data).
	AnnotationPolicyHash = "drmfilter.dev/policy-hash"
	// AnnotationNodeStatus on a status Lease is the node's NodeStatus as
	// JSON.
	AnnotationNodeStatus = "drmfilter.dev/node-status"
)

// Paths and environment variables inside the agent's pod.
const (
	// PolicyMountPath is where the policy ConfigMap volume is mounted (the
	// fallback copy when the API server cannot be reached).
	PolicyMountPath = "/etc/drmfilter/policies"
	// HostRootMountPath is where the host's root filesystem is mounted
	// read-only.
	HostRootMountPath = "/host"
	EnvNodeName       = "DRMFILTER_NODE_NAME"
	EnvPodName        = "DRMFILTER_POD_NAME"
	EnvPodNamespace   = "DRMFILTER_POD_NAMESPACE"
)

// NodeStatusName is the name of node's status Lease.
func NodeStatusName(node string) string { return NodeStatusPrefix + node }

// Policy sources reported in NodeStatus.PolicySource.
const (
	SourceAPI    = "api"    // read from the ConfigMap through the API server
	SourceVolume = "volume" // read from the mounted ConfigMap volume
)

// NodeStatus is what an agent publishes about its node. Its JSON form is
// stable: agents and fleet status of different versions read each other's.
type NodeStatus struct {
	Node         string `json:"node"`
	Pod          string `json:"pod"`
	AgentVersion string `json:"agentVersion"`
	Ready        bool   `json:"ready"`
	Mode         string `json:"mode"`
	// Backend is what enforces on the node (bpf or fanotify), and
	// BackendReason why.
	Backend       string `json:"backend,omitempty"`
	BackendReason string `json:"backendReason,omitempty"`
	// PolicyHash and PolicyGeneration describe the policy in force.
	PolicyHash       string `json:"policyHash"`
	PolicyGeneration uint64 `json:"policyGeneration"`
	PolicySource     string `json:"policySource,omitempty"`
	// PolicyError is the last rejected policy (the previous one stays in
	// force), empty when the newest policy was applied.
	PolicyError string    `json:"policyError,omitempty"`
	Hypervisor  string    `json:"hypervisor,omitempty"`
	Cloud       string    `json:"cloud,omitempty"`
	Container   string    `json:"containerRuntime,omitempty"`
	Nested      bool      `json:"nested,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Encode returns the annotation value for s.
func (s NodeStatus) Encode() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode node status: %w", err)
	}
	return string(b), nil
}

// DecodeNodeStatus parses an AnnotationNodeStatus value.
func DecodeNodeStatus(v string) (NodeStatus, error) {
	var s NodeStatus
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return NodeStatus{}, fmt.Errorf("decode node status: %w", err)
	}
	return s, nil
}

// ShortHash is the form of a policy hash shown in tables: the first 12 hex
// digits.
func ShortHash(h string) string {
	const p = "sha256:"
	if len(h) > len(p) && h[:len(p)] == p {
		h = h[len(p):]
	}
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}
