package kubernetes

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// TestAgentRulesAreExactlyWhatTheAgentUses fails when a verb, resource or
// API group is added to (or removed from) the agent's Role: a change here
// must be a decision, reviewed with the agent code that needs it.
func TestAgentRulesAreExactlyWhatTheAgentUses(t *testing.T) {
	got, err := json.Marshal(testManifest(t, onePolicy).Role.Rules)
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"verbs":["get","list","watch"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["drmfilter-policies"]},` +
		`{"verbs":["create","get","update"],"apiGroups":["coordination.k8s.io"],"resources":["leases"]}` +
		`]`
	if string(got) != want {
		t.Errorf("agent rules\n got %s\nwant %s", got, want)
	}
}

// TestPodReaderIsExactlyReadingPods fails when the agent's one cluster-wide
// grant becomes more than get, list and watch of pods.
func TestPodReaderIsExactlyReadingPods(t *testing.T) {
	m := testManifest(t, onePolicy)
	got, err := json.Marshal(m.PodReader.Rules)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"verbs":["get","list","watch"],"apiGroups":[""],"resources":["pods"]}]`; string(got) != want {
		t.Errorf("pod reader rules\n got %s\nwant %s", got, want)
	}
	if m.PodReader.AggregationRule != nil {
		t.Error("the pod reader aggregates other ClusterRoles")
	}
	crb := m.PodReaderBinding
	if *m.PodReader.Name != kubeschema.AgentPodReader || *crb.Name != kubeschema.AgentPodReader ||
		*crb.RoleRef.Kind != "ClusterRole" || *crb.RoleRef.Name != kubeschema.AgentPodReader {
		t.Errorf("clusterrole %s, binding %s to %s/%s", *m.PodReader.Name, *crb.Name, *crb.RoleRef.Kind, *crb.RoleRef.Name)
	}
	if len(crb.Subjects) != 1 || *crb.Subjects[0].Kind != "ServiceAccount" || *crb.Subjects[0].Name != kubeschema.ServiceAccount || *crb.Subjects[0].Namespace != kubeschema.DefaultNamespace {
		b, _ := json.Marshal(crb.Subjects)
		t.Errorf("subjects %s", b)
	}
	for _, l := range []map[string]string{m.PodReader.Labels, crb.Labels} {
		if l[kubeschema.LabelManagedBy] != kubeschema.LabelManagedByValue || l[kubeschema.LabelName] != kubeschema.LabelNameValue {
			t.Errorf("labels %v", l)
		}
	}
	// Applied after the ServiceAccount the binding names, before the
	// DaemonSet whose agents use it.
	var kinds []string
	for _, o := range m.Objects() {
		kinds = append(kinds, strings.TrimPrefix(typeName(o), "*v1."))
	}
	if got := strings.Join(kinds, " "); got != "NamespaceApplyConfiguration ServiceAccountApplyConfiguration RoleApplyConfiguration RoleBindingApplyConfiguration "+
		"ClusterRoleApplyConfiguration ClusterRoleBindingApplyConfiguration ConfigMapApplyConfiguration DaemonSetApplyConfiguration" {
		t.Errorf("order %s", got)
	}

	m, err = Build(Options{NoPodReader: true}, testPolicies(t, onePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if m.PodReader != nil || m.PodReaderBinding != nil || len(m.Objects()) != 6 {
		t.Errorf("NoPodReader: %d objects", len(m.Objects()))
	}
}

func TestPodReaderNameIsOnePerNamespace(t *testing.T) {
	for ns, want := range map[string]string{
		"":                     "drmfilter-agent-pods",
		"drmfilter":            "drmfilter-agent-pods",
		"security":             "drmfilter-agent-pods-security",
		"drmfilter-agent-pods": "drmfilter-agent-pods-drmfilter-agent-pods",
	} {
		if got := PodReaderName(ns); got != want {
			t.Errorf("PodReaderName(%q) = %s, want %s", ns, got, want)
		}
	}
}

func TestRoleBindingBindsOnlyTheAgentServiceAccount(t *testing.T) {
	m := testManifest(t, onePolicy)
	rb := m.RoleBinding
	if *rb.RoleRef.Kind != "Role" || *rb.RoleRef.Name != kubeschema.AgentRole {
		t.Errorf("role ref %s/%s, want a namespaced Role %s", *rb.RoleRef.Kind, *rb.RoleRef.Name, kubeschema.AgentRole)
	}
	if len(rb.Subjects) != 1 || *rb.Subjects[0].Kind != "ServiceAccount" || *rb.Subjects[0].Name != kubeschema.ServiceAccount || *rb.Subjects[0].Namespace != kubeschema.DefaultNamespace {
		b, _ := json.Marshal(rb.Subjects)
		t.Errorf("subjects %s", b)
	}
}

func TestDaemonSetRunsTheAgentWithOnlyWhatItNeeds(t *testing.T) {
	m := testManifest(t, onePolicy)
	ds := m.DaemonSet
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	wantArgs := "run --kubernetes --host-root=/host --policy=/etc/drmfilter/policies --metrics-address=0.0.0.0:9477 --audit-file=- --audit-stdout --status-socket=/run/drmfilter/status.sock"
	if got := strings.Join(c.Args, " "); got != wantArgs {
		t.Errorf("args\n got %s\nwant %s", got, wantArgs)
	}
	if *c.Image != "registry.example/drmfilter:test" {
		t.Errorf("image %s", *c.Image)
	}

	sc := c.SecurityContext
	if *sc.Privileged || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || *sc.RunAsUser != 0 {
		t.Errorf("privileged %v, allowPrivilegeEscalation %v, readOnlyRootFilesystem %v, runAsUser %d",
			*sc.Privileged, *sc.AllowPrivilegeEscalation, *sc.ReadOnlyRootFilesystem, *sc.RunAsUser)
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}) {
		t.Errorf("capabilities drop %v add %v", sc.Capabilities.Drop, sc.Capabilities.Add)
	}

	if !*pod.HostPID || *pod.PriorityClassName != "system-node-critical" || *pod.ServiceAccountName != kubeschema.ServiceAccount ||
		!*pod.AutomountServiceAccountToken || pod.NodeSelector["kubernetes.io/os"] != "linux" || *pod.TerminationGracePeriodSeconds != 30 {
		b, _ := json.Marshal(pod)
		t.Errorf("pod spec %s", b)
	}
	if len(pod.Tolerations) != 1 || *pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != nil || pod.Tolerations[0].Effect != nil {
		t.Errorf("tolerations: want one that tolerates every taint")
	}
	if pod.HostNetwork != nil || pod.HostIPC != nil {
		t.Error("the agent needs neither the host's network nor its IPC namespace")
	}

	// The node's filesystem read-only with HostToContainer propagation; the
	// whole ConfigMap (a subPath mount would never be updated).
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[*vm.Name] = *vm.MountPath
		if vm.SubPath != nil || vm.SubPathExpr != nil {
			t.Errorf("volume mount %s uses a subPath", *vm.Name)
		}
		if *vm.Name == volumeHostRoot && (vm.ReadOnly == nil || !*vm.ReadOnly || *vm.MountPropagation != corev1.MountPropagationHostToContainer) {
			t.Error("host root: want read-only with HostToContainer propagation")
		}
		if *vm.Name == volumePolicies && (vm.ReadOnly == nil || !*vm.ReadOnly) {
			t.Error("policies: want read-only")
		}
	}
	if mounts[volumeHostRoot] != "/host" || mounts[volumePolicies] != "/etc/drmfilter/policies" || mounts[volumeRun] != "/run" {
		t.Errorf("mounts %v", mounts)
	}
	for _, v := range pod.Volumes {
		if *v.Name == volumeHostRoot && (*v.HostPath.Path != "/" || *v.HostPath.Type != corev1.HostPathDirectory) {
			t.Errorf("host root volume %s", *v.HostPath.Path)
		}
		if *v.Name == volumePolicies && *v.ConfigMap.Name != kubeschema.PolicyConfigMap {
			t.Errorf("policies volume from %s", *v.ConfigMap.Name)
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[*e.Name] = "fieldRef " + *e.ValueFrom.FieldRef.FieldPath
		} else {
			env[*e.Name] = *e.Value
		}
	}
	if env[kubeschema.EnvNodeName] != "fieldRef spec.nodeName" || env[kubeschema.EnvPodName] != "fieldRef metadata.name" ||
		env[kubeschema.EnvPodNamespace] != "fieldRef metadata.namespace" || env["GOMEMLIMIT"] != "230MiB" || len(env) != 4 {
		t.Errorf("env %v", env)
	}

	if _, ok := (*c.Resources.Limits)[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit would throttle the agent while the node's opens wait for it")
	}
	if c.Resources.Requests.Cpu().String() != "50m" || c.Resources.Requests.Memory().String() != "64Mi" || c.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("resources requests %v limits %v", *c.Resources.Requests, *c.Resources.Limits)
	}
	if c.LivenessProbe.Exec == nil || c.ReadinessProbe.Exec == nil || *c.Ports[0].ContainerPort != MetricsPort {
		t.Error("probes: want exec probes over the status socket, and the metrics port for Prometheus")
	}

	// Policy changes must not restart pods: nothing about the policy in
	// the pod template.
	tmpl, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(tmpl), kubeschema.AnnotationPolicyHash) || strings.Contains(string(tmpl), m.ConfigMap.Annotations[kubeschema.AnnotationPolicyHash]) {
		t.Error("the pod template carries the policy hash: a policy change would restart every agent")
	}
	if ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "1" || *ds.Spec.UpdateStrategy.Type != "RollingUpdate" {
		t.Errorf("update strategy %v", ds.Spec.UpdateStrategy)
	}
}

func TestBuildOptions(t *testing.T) {
	p := testPolicies(t, onePolicy)
	m, err := Build(Options{Namespace: "security", MaxUnavailable: intstr.FromString("10%"), RuntimeSocket: "/run/custom/cri.sock"}, p)
	if err != nil {
		t.Fatal(err)
	}
	c := m.DaemonSet.Spec.Template.Spec.Containers[0]
	if last := c.Args[len(c.Args)-1]; last != "--cri-endpoint=/host/run/custom/cri.sock" {
		t.Errorf("last arg %q", last)
	}
	if *c.Image != DefaultImage() || !strings.HasPrefix(*c.Image, "ghcr.io/drmfilter/drmfilter:") {
		t.Errorf("default image %s", *c.Image)
	}
	if m.DaemonSet.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String() != "10%" {
		t.Error("max unavailable not passed on")
	}
	for _, ns := range []*string{m.ServiceAccount.Namespace, m.Role.Namespace, m.RoleBinding.Namespace, m.RoleBinding.Subjects[0].Namespace,
		m.PodReaderBinding.Subjects[0].Namespace, m.ConfigMap.Namespace, m.DaemonSet.Namespace, m.Namespace.Name} {
		if *ns != "security" {
			t.Errorf("namespace %s", *ns)
		}
	}
	if *m.PodReader.Name != "drmfilter-agent-pods-security" || *m.PodReaderBinding.Name != *m.PodReader.Name || *m.PodReaderBinding.RoleRef.Name != *m.PodReader.Name {
		t.Errorf("pod reader %s, binding %s to %s", *m.PodReader.Name, *m.PodReaderBinding.Name, *m.PodReaderBinding.RoleRef.Name)
	}
	if m.ConfigMap.Annotations[kubeschema.AnnotationPolicyHash] != p.Set.Hash || m.ConfigMap.Data["secrets.yaml"] != onePolicy["secrets.yaml"] {
		t.Error("configmap: want the policy file under its base name and the set's hash")
	}

	for _, bad := range []Options{
		{Namespace: "Not_A_Namespace"},
		{RuntimeSocket: "run/containerd.sock"},
		{RuntimeSocket: "/run/../etc/x.sock"},
	} {
		if _, err := Build(bad, p); err == nil {
			t.Errorf("Build(%+v) accepted", bad)
		}
	}
}

func TestParseMaxUnavailable(t *testing.T) {
	for in, want := range map[string]string{"1": "1", "3": "3", "10%": "10%", "100%": "100%"} {
		got, err := ParseMaxUnavailable(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseMaxUnavailable(%q) = %v, %v", in, got.String(), err)
		}
		if in == "3" && got.Type != intstr.Int {
			t.Errorf("3 parsed as a string")
		}
	}
	for _, in := range []string{"0", "-1", "0%", "101%", "x", "", "1.5"} {
		if _, err := ParseMaxUnavailable(in); err == nil {
			t.Errorf("ParseMaxUnavailable(%q) accepted", in)
		}
	}
}
