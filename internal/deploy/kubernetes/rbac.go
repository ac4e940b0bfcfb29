package kubernetes

import (
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// AgentRules are the agent's permissions inside its namespace (it learns
// its node and pod from the downward API; its one cluster-wide grant is
// PodReaderRules):
//
//   - read and watch the policy ConfigMap, by name only (a list or watch is
//     allowed when it selects that name with a field selector);
//   - publish its node's status Lease (kubeschema.NodeStatusName): create,
//     which RBAC cannot restrict by name since the name is not known before
//     the object exists, and get and update, which cannot be restricted
//     to the agent's own Lease either, as the name depends on the node the
//     pod lands on. The agent never patches or deletes, so those verbs are
//     not granted.
func AgentRules() []*rbacv1ac.PolicyRuleApplyConfiguration {
	return []*rbacv1ac.PolicyRuleApplyConfiguration{
		rbacv1ac.PolicyRule().
			WithAPIGroups("").
			WithResources("configmaps").
			WithResourceNames(kubeschema.PolicyConfigMap).
			WithVerbs("get", "list", "watch"),
		rbacv1ac.PolicyRule().
			WithAPIGroups("coordination.k8s.io").
			WithResources("leases").
			WithVerbs("create", "get", "update"),
	}
}

func role(o Options) *rbacv1ac.RoleApplyConfiguration {
	return rbacv1ac.Role(kubeschema.AgentRole, o.Namespace).
		WithLabels(agentLabels()).
		WithRules(AgentRules()...)
}

func roleBinding(o Options) *rbacv1ac.RoleBindingApplyConfiguration {
	return rbacv1ac.RoleBinding(kubeschema.AgentRole, o.Namespace).
		WithLabels(agentLabels()).
		WithRoleRef(rbacv1ac.RoleRef().
			WithAPIGroup("rbac.authorization.k8s.io").
			WithKind("Role").
			WithName(kubeschema.AgentRole)).
		WithSubjects(rbacv1ac.Subject().
			WithKind("ServiceAccount").
			WithName(kubeschema.ServiceAccount).
			WithNamespace(o.Namespace))
}

// PodReaderRules are the agent's only cluster-wide permission: get, list
// and watch pods. The agent lists and watches only the pods of its own node
// (field selector spec.nodeName=<node>) to learn their labels as they are
// now; the container runtime knows them only as they were at pod creation,
// so a policy selecting pods by labels would miss later label changes.
//
// RBAC cannot restrict a grant to the pods of one node, hence a ClusterRole.
// That is acceptable: it is read-only, pods only (no secrets, no
// configmaps, no pods/exec, pods/log or any other subresource), and the same
// grant other node agents (log collectors, network and security agents)
// hold. Without it the agent falls back to the runtime's labels: it checks
// once at start with a List limited to its node.
func PodReaderRules() []*rbacv1ac.PolicyRuleApplyConfiguration {
	return []*rbacv1ac.PolicyRuleApplyConfiguration{
		rbacv1ac.PolicyRule().
			WithAPIGroups("").
			WithResources("pods").
			WithVerbs("get", "list", "watch"),
	}
}

// PodReaderName is the name of the pod reader ClusterRole and
// ClusterRoleBinding of a deployment in namespace: kubeschema.AgentPodReader
// in the default namespace, kubeschema.AgentPodReader + "-" + namespace in
// any other. Cluster-scoped objects are shared by every deployment, and the
// binding names one namespace's ServiceAccount, so two deployments in
// different namespaces need two of each; no two namespaces give one name.
func PodReaderName(namespace string) string {
	if namespace == "" || namespace == kubeschema.DefaultNamespace {
		return kubeschema.AgentPodReader
	}
	return kubeschema.AgentPodReader + "-" + namespace
}

func podReaderRole(o Options) *rbacv1ac.ClusterRoleApplyConfiguration {
	return rbacv1ac.ClusterRole(PodReaderName(o.Namespace)).
		WithLabels(agentLabels()).
		WithRules(PodReaderRules()...)
}

func podReaderBinding(o Options) *rbacv1ac.ClusterRoleBindingApplyConfiguration {
	return rbacv1ac.ClusterRoleBinding(PodReaderName(o.Namespace)).
		WithLabels(agentLabels()).
		WithRoleRef(rbacv1ac.RoleRef().
			WithAPIGroup("rbac.authorization.k8s.io").
			WithKind("ClusterRole").
			WithName(PodReaderName(o.Namespace))).
		WithSubjects(rbacv1ac.Subject().
			WithKind("ServiceAccount").
			WithName(kubeschema.ServiceAccount).
			WithNamespace(o.Namespace))
}
