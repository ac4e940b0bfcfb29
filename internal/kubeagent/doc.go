// Package kubeagent is the agent's in-cluster side: what `drmfilter run
// --kubernetes` adds to the node agent when it runs as a pod of the
// drmfilter DaemonSet. It owns two things, both through client-go and the
// names of package kubeschema:
//
//   - PolicyWatcher (watcher.go) watches the policy ConfigMap through the API
//     server (a list and watch restricted by a metadata.name field selector,
//     which RBAC authorizes against the Role's resourceNames), hands its
//     *.yaml and *.yml keys to the agent as policy sources, and asks for a
//     reload within about a second of a change. Until the watch has synced,
//     and while the API server cannot be reached, it reads the mounted copy
//     of the ConfigMap instead (kubeschema.PolicyMountPath), and says which
//     copy it used.
//   - StatusPublisher (publisher.go) writes the node's status Lease
//     (kubeschema.NodeStatusName): the NodeStatus record in an annotation,
//     holderIdentity the pod, renewTime the last publication and
//     leaseDurationSeconds the time after which a silent agent counts as
//     stale. It publishes every interval, after every reload attempt,
//     whenever the agent's status changes (ready, policy, error), and once
//     more, not ready, when the agent stops.
//
// Node (node.go) wires both to an agent; Connect (connect.go) builds the
// client from the pod's service account or a kubeconfig file.
package kubeagent
