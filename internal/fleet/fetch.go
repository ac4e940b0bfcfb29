package fleet

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// Fetch reads a snapshot of namespace ns through the API server.
func Fetch(ctx context.Context, c kubernetes.Interface, ns string) (*Snapshot, error) {
	s := &Snapshot{Namespace: ns}
	ds, err := c.AppsV1().DaemonSets(ns).Get(ctx, kubeschema.DaemonSet, metav1.GetOptions{})
	switch {
	case err == nil:
		s.DaemonSet = ds
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get daemonset %s/%s: %w", ns, kubeschema.DaemonSet, err)
	}
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, kubeschema.PolicyConfigMap, metav1.GetOptions{})
	switch {
	case err == nil:
		s.ConfigMap = cm
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("get configmap %s/%s: %w", ns, kubeschema.PolicyConfigMap, err)
	}
	sel, err := podSelector(s)
	if err != nil {
		return nil, err
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list agent pods in %s: %w", ns, err)
	}
	s.Pods = pods.Items
	leases, err := c.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: leaseSelector().String()})
	if err != nil {
		return nil, fmt.Errorf("list node status leases in %s: %w", ns, err)
	}
	s.Leases = leases.Items
	return s, nil
}

// podSelector selects the DaemonSet's pods: its own selector, or the
// agent's labels when the DaemonSet is gone (its pods may linger).
func podSelector(s *Snapshot) (labels.Selector, error) {
	if s.DaemonSet != nil && s.DaemonSet.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(s.DaemonSet.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("daemonset %s/%s selector: %w", s.Namespace, kubeschema.DaemonSet, err)
		}
		return sel, nil
	}
	return labels.SelectorFromSet(labels.Set{kubeschema.LabelName: kubeschema.LabelNameValue, kubeschema.LabelComponent: kubeschema.LabelComponentAgent}), nil
}

// leaseSelector selects the status Leases.
func leaseSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{kubeschema.LabelName: kubeschema.LabelNameValue})
}
