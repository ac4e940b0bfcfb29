package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// UndeployOptions tune Undeploy.
type UndeployOptions struct {
	// Namespace is where deploy put the objects; kubeschema.DefaultNamespace
	// if empty.
	Namespace string
	// KeepNamespace leaves the namespace in place.
	KeepNamespace bool
	// Report, if set, is called with each line of what was done, such as
	// "daemonset/drmfilter-agent deleted".
	Report func(string)
}

// systemNamespaces are never deleted, whatever their labels say.
var systemNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// Undeploy deletes what Apply created and the agents' node status Leases
// (the pod reader ClusterRole and ClusterRoleBinding only if they carry
// deploy's label kubeschema.LabelManagedBy), then the namespace (unless KeepNamespace, or it is a system namespace, or
// deploy did not label it). Objects already gone are skipped, so it can be
// run again. It returns the "kind/name" of each object it deleted.
func Undeploy(ctx context.Context, cs clientset.Interface, o UndeployOptions) ([]string, error) {
	ns := o.Namespace
	if ns == "" {
		ns = kubeschema.DefaultNamespace
	}
	report := o.Report
	if report == nil {
		report = func(string) {}
	}
	// Background: the DaemonSet's pods are removed by the garbage
	// collector after the DaemonSet is gone.
	del := metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}
	// deleted is the removal of a namespaced object: everything deploy's
	// namespace holds under these names is deploy's.
	deleted := func(ref string, err error) (removal, error) {
		switch {
		case apierrors.IsNotFound(err):
			return removal{absent: true}, nil
		case err != nil:
			return removal{}, apiError("delete "+ref+" in namespace "+ns, err)
		}
		return removal{}, nil
	}
	rbac := cs.RbacV1()
	podReader := PodReaderName(ns)
	steps := []struct {
		ref string
		fn  func(ref string) (removal, error)
	}{
		{"daemonset/" + kubeschema.DaemonSet, func(ref string) (removal, error) {
			return deleted(ref, cs.AppsV1().DaemonSets(ns).Delete(ctx, kubeschema.DaemonSet, del))
		}},
		{"rolebinding/" + kubeschema.AgentRole, func(ref string) (removal, error) {
			return deleted(ref, rbac.RoleBindings(ns).Delete(ctx, kubeschema.AgentRole, del))
		}},
		{"role/" + kubeschema.AgentRole, func(ref string) (removal, error) {
			return deleted(ref, rbac.Roles(ns).Delete(ctx, kubeschema.AgentRole, del))
		}},
		// Cluster-scoped, so deleted only if deploy's label says deploy
		// made them.
		{"clusterrolebinding/" + podReader, func(ref string) (removal, error) {
			c := rbac.ClusterRoleBindings()
			return removeOwned(ctx, ref, podReader, false, c.Get, c.Delete)
		}},
		{"clusterrole/" + podReader, func(ref string) (removal, error) {
			c := rbac.ClusterRoles()
			return removeOwned(ctx, ref, podReader, false, c.Get, c.Delete)
		}},
		{"configmap/" + kubeschema.PolicyConfigMap, func(ref string) (removal, error) {
			return deleted(ref, cs.CoreV1().ConfigMaps(ns).Delete(ctx, kubeschema.PolicyConfigMap, del))
		}},
		{"serviceaccount/" + kubeschema.ServiceAccount, func(ref string) (removal, error) {
			return deleted(ref, cs.CoreV1().ServiceAccounts(ns).Delete(ctx, kubeschema.ServiceAccount, del))
		}},
	}
	var removed []string
	for _, s := range steps {
		out, err := s.fn(s.ref)
		switch {
		case err != nil:
			return removed, err
		case out.absent:
		case out.note != "":
			report(s.ref + " kept: " + out.note)
		default:
			removed = append(removed, s.ref)
			report(s.ref + " deleted")
		}
	}

	leases := cs.CoordinationV1().Leases(ns)
	sel := labels.SelectorFromSet(labels.Set{kubeschema.LabelName: kubeschema.LabelNameValue}).String()
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil && !apierrors.IsNotFound(err) {
		return removed, apiError("list node status leases in namespace "+ns, err)
	}
	if list != nil {
		for _, l := range list.Items {
			ref := "lease/" + l.Name
			err := leases.Delete(ctx, l.Name, del)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return removed, apiError("delete "+ref+" in namespace "+ns, err)
			default:
				removed = append(removed, ref)
				report(ref + " deleted")
			}
		}
	}

	if o.KeepNamespace {
		return removed, nil
	}
	ref := "namespace/" + ns
	cur, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return removed, nil
	case err != nil:
		return removed, apiError("read "+ref, err)
	case cur.DeletionTimestamp != nil:
		report(ref + " is already being deleted")
		return removed, nil
	case systemNamespaces[ns]:
		report(fmt.Sprintf("%s kept: a system namespace", ref))
		return removed, nil
	case cur.Labels[kubeschema.LabelManagedBy] != kubeschema.LabelManagedByValue:
		report(fmt.Sprintf("%s kept: it lacks the label %s=%s that deploy sets", ref, kubeschema.LabelManagedBy, kubeschema.LabelManagedByValue))
		return removed, nil
	}
	if others := otherManagers(cur.ManagedFields); len(others) > 0 {
		report(fmt.Sprintf("%s kept: it was not made by deploy alone (also written by %s); delete it yourself if nothing else uses it", ref, strings.Join(others, ", ")))
		return removed, nil
	}
	err = cs.CoreV1().Namespaces().Delete(ctx, ns, del)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return removed, apiError("delete "+ref, err)
	default:
		removed = append(removed, ref)
		report(ref + " deleted")
	}
	return removed, nil
}

// otherManagers lists the managers besides deploy's that wrote an object
// (not its status), such as kubectl-create for a namespace that existed
// before deploy: undeploy does not delete a namespace someone else made.
func otherManagers(entries []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, e := range entries {
		if e.Manager != kubeschema.FieldManager && e.Subresource == "" && !slices.Contains(out, e.Manager) {
			out = append(out, e.Manager)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
