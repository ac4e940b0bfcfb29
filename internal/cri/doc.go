// Package cri tells what the container runtime knows about a container:
// its name, its image (name, digested reference, ID) and its Kubernetes pod
// (name, namespace, UID, labels). It owns the connections to the node's
// CRI runtime sockets and the per-container cache of their answers; it
// holds no policy and reads nothing of the process (the container ID comes
// from the cgroup, see internal/proc and internal/environ).
//
// The source is the Kubernetes Container Runtime Interface, RuntimeService
// of k8s.io/cri-api/pkg/apis/runtime/v1 (api.proto), over gRPC on a Unix
// socket: ContainerStatus for the container, ListContainers (filtered by
// ID) for its pod sandbox, PodSandboxStatus for the pod, and
// ListContainers and ListPodSandbox to notice containers that are gone.
// An ID that is a sandbox (the pause container's cgroup) is answered from
// PodSandboxStatus alone. containerd, CRI-O, k3s, microk8s, k0s and
// cri-dockerd serve it; Discover finds their sockets. See
// https://kubernetes.io/docs/concepts/architecture/cri/.
//
// # Never blocking a decision
//
// Cached answers from memory at once. On a miss it starts one background
// lookup per container ID (concurrent callers share it; at most
// Options.MaxConcurrent run, the rest queue) and returns Pending; a later
// call sees Known, Missing (the runtime does not know the ID) or
// Unavailable (no runtime answered; Info.Err says why). Each runtime call
// is bounded by Options.Timeout. Info.Missing lists the fields the runtime
// did not give, so an audit record can say what the decision did not
// know. Lookup is the blocking form, for tools.
//
// # Freshness
//
// Known answers are refreshed after Options.TTL (served stale meanwhile),
// Missing ones after Options.NegativeTTL, Unavailable ones after
// Options.RetryInterval. A Sweep, started by Cached every
// Options.SweepInterval, drops the containers a runtime no longer lists;
// Forget drops one at once. The cache holds at most Options.CacheSize
// containers and evicts by the CLOCK algorithm, so a hit takes only a read
// lock and does not allocate.
//
// # Files
//
//   - doc.go: this overview.
//   - info.go: Info, State, the sentinel errors and EndpointError.
//   - client.go: Options, Client (Cached, Lookup, Forget, Sweep, Close),
//     background lookups.
//   - cache.go: the bounded cache's eviction (CLOCK).
//   - runtime.go: the gRPC connection to one endpoint and the CRI calls.
//   - discover.go: Discover, the well-known runtime sockets under a root.
//
// Tests: fake_test.go serves the RuntimeService from a table;
// containerd_linux_test.go checks against a real containerd when root and
// the packages are there. README.md has what each shows.
package cri
