package kubernetes

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// The agent container.
const (
	// ContainerName is the agent's container in the DaemonSet's pods.
	ContainerName = "agent"
	// MetricsPort serves Prometheus /metrics on the pod's IP. Not
	// /healthz and /readyz: the agent serves them only on a port below
	// net.ipv4.ip_unprivileged_port_start, and the probes ask the status
	// socket instead.
	MetricsPort = 9477
	// MetricsPortName names MetricsPort.
	MetricsPortName = "metrics"
	// RunDir holds the agent's status socket. The agent creates it, 0700,
	// in the emptyDir mounted at runVolumePath: it refuses a socket
	// directory others can write to, and the kubelet makes an emptyDir
	// 0777.
	RunDir = "/run/drmfilter"
	// StatusSocket is the agent's status socket, which the probes ask.
	StatusSocket = RunDir + "/status.sock"
	// BinaryPath is the drmfilter binary in the agent's image
	// (deploy/image/Containerfile); the probes run it.
	BinaryPath = "/usr/bin/drmfilter"
	// runVolumePath is where the emptyDir that holds RunDir is mounted.
	runVolumePath = "/run"
)

// ProbeCommand is the command of the agent container's liveness (check
// "live") or readiness (check "ready") probe: `drmfilter status --check`
// over the status socket. It exits 0 only when root answers there, so,
// unlike an HTTP probe of a port, no other process can answer for the
// agent.
func ProbeCommand(check string) []string {
	return []string{BinaryPath, "status", "--check=" + check, "--socket=" + StatusSocket}
}

// Volume names.
const (
	volumeHostRoot = "host-root"
	volumePolicies = "policies"
	volumeRun      = "run"
)

// AgentArgs are the arguments of `drmfilter` in the agent's container.
func AgentArgs(o Options) []string {
	args := []string{
		"run",
		"--kubernetes",
		"--host-root=" + kubeschema.HostRootMountPath,
		"--policy=" + kubeschema.PolicyMountPath,
		"--metrics-address=0.0.0.0:" + strconv.Itoa(MetricsPort),
		// Audit records go to the container's standard output, where the
		// cluster's log collection picks them up.
		"--audit-file=-",
		"--audit-stdout",
		"--status-socket=" + StatusSocket,
	}
	if o.RuntimeSocket != "" {
		// The node's filesystem is seen under the host root mount.
		args = append(args, "--cri-endpoint="+kubeschema.HostRootMountPath+o.RuntimeSocket)
	}
	return args
}

// daemonSet runs one agent on every Linux node.
func daemonSet(o Options) *appsv1ac.DaemonSetApplyConfiguration {
	return appsv1ac.DaemonSet(kubeschema.DaemonSet, o.Namespace).
		WithLabels(agentLabels()).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels())).
			WithUpdateStrategy(appsv1ac.DaemonSetUpdateStrategy().
				WithType("RollingUpdate").
				WithRollingUpdate(appsv1ac.RollingUpdateDaemonSet().WithMaxUnavailable(o.MaxUnavailable))).
			WithTemplate(corev1ac.PodTemplateSpec().
				// No policy hash here: a policy change updates only the
				// ConfigMap, and the agents reload it in place. A changing
				// template annotation would restart every pod instead.
				WithLabels(agentLabels()).
				WithAnnotations(map[string]string{"kubectl.kubernetes.io/default-container": ContainerName}).
				WithSpec(podSpec(o))))
}

func podSpec(o Options) *corev1ac.PodSpecApplyConfiguration {
	return corev1ac.PodSpec().
		WithServiceAccountName(kubeschema.ServiceAccount).
		// The agent reads its policy ConfigMap and writes its node's status
		// Lease through the API with this token.
		WithAutomountServiceAccountToken(true).
		WithNodeSelector(map[string]string{"kubernetes.io/os": "linux"}).
		// Every node, tainted ones and control-plane nodes included: a node
		// without an agent is a node whose files are not protected.
		WithTolerations(corev1ac.Toleration().WithOperator(corev1.TolerationOpExists)).
		// Evicting the agent under node pressure would lift the protection.
		WithPriorityClassName("system-node-critical").
		// The agent names the process behind every file access (its
		// executable, credentials, cgroup and container) from /proc/PID,
		// which needs the host's PID namespace.
		WithHostPID(true).
		WithTerminationGracePeriodSeconds(30).
		WithContainers(container(o)).
		WithVolumes(
			// The node's filesystems, read-only, for marks, path resolution
			// and the container runtime's socket. HostToContainer makes mounts
			// made on the node later (new pod volumes, FUSE mounts) appear.
			corev1ac.Volume().WithName(volumeHostRoot).
				WithHostPath(corev1ac.HostPathVolumeSource().WithPath("/").WithType(corev1.HostPathDirectory)),
			// The whole ConfigMap, never a subPath: a subPath mount is never
			// updated. The agent watches the ConfigMap through the API and
			// uses this copy when the API server cannot be reached.
			corev1ac.Volume().WithName(volumePolicies).
				WithConfigMap(corev1ac.ConfigMapVolumeSource().WithName(kubeschema.PolicyConfigMap)),
			corev1ac.Volume().WithName(volumeRun).
				WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
		)
}

// The agent container's memory limit, and the Go runtime's soft limit
// (GOMEMLIMIT) at about 90% of it.
const (
	memoryLimit = "256Mi"
	goMemLimit  = "230MiB"
)

func container(o Options) *corev1ac.ContainerApplyConfiguration {
	// The fieldRef's apiVersion is what the server would default it to;
	// written out, it is a field deploy owns, so a redeploy finds its
	// fields unchanged and sends nothing.
	fieldEnv := func(name, field string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).
			WithValueFrom(corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath(field)))
	}
	probe := func(check string, period int32) *corev1ac.ProbeApplyConfiguration {
		return corev1ac.Probe().
			WithExec(corev1ac.ExecAction().WithCommand(ProbeCommand(check)...)).
			WithPeriodSeconds(period).
			WithTimeoutSeconds(3).
			WithFailureThreshold(3)
	}
	return corev1ac.Container().
		WithName(ContainerName).
		WithImage(o.Image).
		WithArgs(AgentArgs(o)...).
		WithEnv(
			fieldEnv(kubeschema.EnvNodeName, "spec.nodeName"),
			fieldEnv(kubeschema.EnvPodName, "metadata.name"),
			fieldEnv(kubeschema.EnvPodNamespace, "metadata.namespace"),
			// The Go runtime does not read the cgroup's memory limit: without
			// this its heap may grow to twice the live data before a
			// collection and hit the limit (an OOM kill releases the node's
			// waiting opens, but the agent is gone until restarted).
			corev1ac.EnvVar().WithName("GOMEMLIMIT").WithValue(goMemLimit),
		).
		WithPorts(corev1ac.ContainerPort().WithName(MetricsPortName).WithContainerPort(MetricsPort).WithProtocol(corev1.ProtocolTCP)).
		// live: the agent answers on its status socket; ready: and the
		// policy is loaded and the kernel marks are in place.
		WithLivenessProbe(probe("live", 10).WithInitialDelaySeconds(10)).
		WithReadinessProbe(probe("ready", 5)).
		// No CPU limit: the kernel holds every covered open on the node until
		// the agent answers, so throttling the agent would freeze those opens
		// node-wide. Memory is bounded: the caches are bounded by design.
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("50m"),
				corev1.ResourceMemory: resource.MustParse("64Mi"),
			}).
			WithLimits(corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse(memoryLimit),
			})).
		WithSecurityContext(securityContext()).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName(volumeHostRoot).WithMountPath(kubeschema.HostRootMountPath).
				WithReadOnly(true).WithMountPropagation(corev1.MountPropagationHostToContainer),
			corev1ac.VolumeMount().WithName(volumePolicies).WithMountPath(kubeschema.PolicyMountPath).WithReadOnly(true),
			corev1ac.VolumeMount().WithName(volumeRun).WithMountPath(runVolumePath),
		)
}

// AgentCapabilities are the only capabilities the agent keeps:
//
//   - SYS_ADMIN: fanotify_init with permission classes and fanotify_mark on
//     whole filesystems.
//   - SYS_PTRACE: reading /proc/PID/root, /proc/PID/exe and the mount table
//     of processes of other users and containers (ptrace access mode checks).
//   - DAC_READ_SEARCH: opening files by handle (open_by_handle_at) and reading
//     executables and index files that root without it could not read (mode
//     0000, other owners), to hash and index them.
//
// The container is not privileged: privileged would add every capability,
// every host device and no seccomp or AppArmor confinement, and fanotify
// needs none of that.
var AgentCapabilities = []corev1.Capability{"SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}

func securityContext() *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithPrivileged(false).
		// no_new_privs: the agent executes nothing, so it never needs to gain
		// privileges. Kubernetes accepts this with added capabilities.
		WithAllowPrivilegeEscalation(false).
		WithReadOnlyRootFilesystem(true).
		// Root, for fanotify and /proc of every user's processes; the
		// capabilities above bound what root can do.
		WithRunAsUser(0).
		WithCapabilities(corev1ac.Capabilities().
			WithDrop("ALL").
			WithAdd(AgentCapabilities...))
}
