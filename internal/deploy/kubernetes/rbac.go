package kubernetes

import (
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// AgentRules are the agent's permissions, all inside its namespace; it has
// none cluster-wide (it learns its node and pod from the downward API):
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
