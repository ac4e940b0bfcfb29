package kubernetes

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/version"
)

// ImageRepository is where the agent image is published.
const ImageRepository = "ghcr.io/drmfilter/drmfilter"

// DefaultImage is the agent image of this build's version, or the latest
// one for a development build, whose version was never published.
func DefaultImage() string {
	if v := version.Get().Version; version.IsRelease(v) {
		return ImageRepository + ":" + v
	}
	return ImageRepository + ":latest"
}

// Options say what to deploy besides the policies.
type Options struct {
	// Namespace holds every object; kubeschema.DefaultNamespace if empty.
	Namespace string
	// Image is the agent's container image; DefaultImage() if empty.
	Image string
	// MaxUnavailable bounds how many nodes' agents are replaced at once
	// during a rolling update; 1 if unset.
	MaxUnavailable intstr.IntOrString
	// RuntimeSocket is the container runtime's socket as a path on the
	// node, for a runtime the agent does not find by itself; empty lets the
	// agent look in the known places under its host root.
	RuntimeSocket string
	// NoPodReader leaves out the pod reader ClusterRole and
	// ClusterRoleBinding (PodReaderRules): the agents then use the pod
	// labels the container runtime knows, those of pod creation. Apply
	// deletes the ones an earlier deploy made.
	NoPodReader bool
}

// ParseMaxUnavailable parses N or N% (at least 1, at most 100%).
func ParseMaxUnavailable(s string) (intstr.IntOrString, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return intstr.IntOrString{}, fmt.Errorf("max unavailable %q: want a number of nodes (1, 2, ...) or a percentage from 1%% to 100%%", s)
		}
		return intstr.FromString(s), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return intstr.IntOrString{}, fmt.Errorf("max unavailable %q: want a number of nodes (1, 2, ...) or a percentage from 1%% to 100%%", s)
	}
	return intstr.FromInt32(int32(n)), nil
}

// withDefaults fills unset options and checks the others.
func (o Options) withDefaults() (Options, error) {
	if o.Namespace == "" {
		o.Namespace = kubeschema.DefaultNamespace
	}
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return o, fmt.Errorf("namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.Image == "" {
		o.Image = DefaultImage()
	}
	if o.MaxUnavailable == (intstr.IntOrString{}) {
		o.MaxUnavailable = intstr.FromInt32(1)
	}
	if o.RuntimeSocket != "" {
		if !path.IsAbs(o.RuntimeSocket) || path.Clean(o.RuntimeSocket) != o.RuntimeSocket || o.RuntimeSocket == "/" {
			return o, fmt.Errorf("runtime socket %q: want the socket's absolute, clean path on the node, such as /run/containerd/containerd.sock", o.RuntimeSocket)
		}
	}
	return o, nil
}

// Manifest is every object of a deployment, as server-side apply
// configurations.
type Manifest struct {
	Namespace      *corev1ac.NamespaceApplyConfiguration
	ServiceAccount *corev1ac.ServiceAccountApplyConfiguration
	Role           *rbacv1ac.RoleApplyConfiguration
	RoleBinding    *rbacv1ac.RoleBindingApplyConfiguration
	// PodReader and PodReaderBinding are nil with Options.NoPodReader.
	PodReader        *rbacv1ac.ClusterRoleApplyConfiguration
	PodReaderBinding *rbacv1ac.ClusterRoleBindingApplyConfiguration
	ConfigMap        *corev1ac.ConfigMapApplyConfiguration
	DaemonSet        *appsv1ac.DaemonSetApplyConfiguration
}

// Objects returns the objects in the order they are applied: each one
// after those it refers to.
func (m *Manifest) Objects() []any {
	objs := []any{m.Namespace, m.ServiceAccount, m.Role, m.RoleBinding}
	if m.PodReader != nil {
		objs = append(objs, m.PodReader, m.PodReaderBinding)
	}
	return append(objs, m.ConfigMap, m.DaemonSet)
}

// Build returns the objects that run the agent with the policies p.
func Build(o Options, p *Policies) (*Manifest, error) {
	if p == nil || p.Set == nil {
		return nil, errors.New("build manifest: no policies")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Namespace:      namespace(o),
		ServiceAccount: serviceAccount(o),
		Role:           role(o),
		RoleBinding:    roleBinding(o),
		ConfigMap:      configMap(o, p),
		DaemonSet:      daemonSet(o),
	}
	if !o.NoPodReader {
		m.PodReader, m.PodReaderBinding = podReaderRole(o), podReaderBinding(o)
	}
	return m, nil
}

// commonLabels are on every object deploy creates.
func commonLabels() map[string]string {
	return map[string]string{
		kubeschema.LabelName:      kubeschema.LabelNameValue,
		kubeschema.LabelManagedBy: kubeschema.LabelManagedByValue,
	}
}

// agentLabels are on the agent's objects and select its pods.
func agentLabels() map[string]string {
	l := commonLabels()
	l[kubeschema.LabelComponent] = kubeschema.LabelComponentAgent
	return l
}

// selectorLabels select the agent's pods. A DaemonSet's selector cannot
// change, so it holds only labels that never do.
func selectorLabels() map[string]string {
	return map[string]string{
		kubeschema.LabelName:      kubeschema.LabelNameValue,
		kubeschema.LabelComponent: kubeschema.LabelComponentAgent,
	}
}

// namespace is labelled for the Pod Security Admission level "privileged":
// the agent needs hostPID, a hostPath volume and capabilities beyond the
// "baseline" level's list, so a cluster that enforces baseline or
// restricted by default would refuse its pods in an unlabelled namespace.
func namespace(o Options) *corev1ac.NamespaceApplyConfiguration {
	l := commonLabels()
	for _, mode := range []string{"enforce", "audit", "warn"} {
		l["pod-security.kubernetes.io/"+mode] = "privileged"
	}
	return corev1ac.Namespace(o.Namespace).WithLabels(l)
}

func serviceAccount(o Options) *corev1ac.ServiceAccountApplyConfiguration {
	return corev1ac.ServiceAccount(kubeschema.ServiceAccount, o.Namespace).WithLabels(agentLabels())
}

// configMap carries one key per policy file, and the set's hash: the
// desired policy that `drmfilter fleet status` compares each node with.
func configMap(o Options, p *Policies) *corev1ac.ConfigMapApplyConfiguration {
	return corev1ac.ConfigMap(kubeschema.PolicyConfigMap, o.Namespace).
		WithLabels(agentLabels()).
		WithAnnotations(map[string]string{kubeschema.AnnotationPolicyHash: p.Set.Hash}).
		WithData(p.Data)
}
