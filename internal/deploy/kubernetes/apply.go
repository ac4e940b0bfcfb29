package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// Action is what applying an object did.
type Action string

// The actions, worded as kubectl words them.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	// Skipped is an object of a server dry run whose namespace does not
	// exist yet: the server cannot check an object in a namespace it does
	// not have, and a dry run does not create the namespace.
	Skipped Action = "skipped"
	// Deleted is an object deploy made earlier and no longer wants: the
	// pod reader of a deploy with Options.NoPodReader.
	Deleted Action = "deleted"
	// Kept is an object deploy no longer wants but leaves in place; the
	// Result's Note says why.
	Kept Action = "kept"
)

// Result is the outcome of applying one object.
type Result struct {
	// Ref is "kind/name", such as "daemonset/drmfilter-agent".
	Ref    string
	Action Action
	// Object is the object as the server has (or, in a server dry run,
	// would have) it; nil for Skipped, Deleted and Kept.
	Object runtime.Object
	// Note says why an object was Kept.
	Note string
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Force takes over fields that another field manager owns.
	Force bool
	// ServerDryRun sends every object with dryRun=All: the server
	// validates and defaults them and stores nothing.
	ServerDryRun bool
	// Report, if set, is called after each object is applied.
	Report func(Result)
}

// ConflictError is a server-side apply refused because fields deploy sets
// are owned by another field manager (someone ran kubectl edit, or another
// tool manages them).
type ConflictError struct {
	Ref       string
	Conflicts []FieldConflict
}

// FieldConflict is one field and the manager that owns it.
type FieldConflict struct {
	Field   string // such as .spec.template.spec.containers[name="agent"].image
	Manager string // such as kubectl-edit
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apply %s: %d field(s) are owned by another field manager:", e.Ref, len(e.Conflicts))
	for _, c := range e.Conflicts {
		fmt.Fprintf(&b, "\n  %s (owned by %q)", c.Field, c.Manager)
	}
	return b.String()
}

// Apply creates or updates every object of m with server-side apply, in
// dependency order, and stops at the first error. An object whose fields
// are already what m says (as owned by kubeschema.FieldManager) is not sent
// at all, so a second deploy with the same inputs writes nothing. In a
// server dry run, the namespaced objects of a namespace that does not exist
// yet are Skipped; cluster-scoped ones are checked.
//
// Without the pod reader (Options.NoPodReader), its ClusterRoleBinding and
// ClusterRole are Deleted if an earlier deploy made them (they carry the
// label kubeschema.LabelManagedBy=drmfilter), Kept if not or if these
// credentials may not read them (the Note says which), and not reported
// when there are none. An error about the pod reader matches
// ErrPodReader.
func Apply(ctx context.Context, cs clientset.Interface, m *Manifest, o ApplyOptions) ([]Result, error) {
	core, rbac, apps := cs.CoreV1(), cs.RbacV1(), cs.AppsV1()
	ns := *m.Namespace.Name
	type step struct {
		ref string
		// cluster is a cluster-scoped object: a server dry run can check
		// it before the namespace exists.
		cluster bool
		// apply returns nil when there was nothing to do or report.
		apply func(ref string) (*Result, error)
	}
	one := func(r Result, err error) (*Result, error) { return &r, err }
	steps := []step{
		{"namespace/" + ns, true, func(ref string) (*Result, error) {
			c := core.Namespaces()
			return one(applyObject(ctx, o, ref, ns, m.Namespace, c.Get, corev1ac.ExtractNamespace, c.Apply))
		}},
		{"serviceaccount/" + *m.ServiceAccount.Name, false, func(ref string) (*Result, error) {
			c := core.ServiceAccounts(ns)
			return one(applyObject(ctx, o, ref, *m.ServiceAccount.Name, m.ServiceAccount, c.Get, corev1ac.ExtractServiceAccount, c.Apply))
		}},
		{"role/" + *m.Role.Name, false, func(ref string) (*Result, error) {
			c := rbac.Roles(ns)
			return one(applyObject(ctx, o, ref, *m.Role.Name, m.Role, c.Get, rbacv1ac.ExtractRole, c.Apply))
		}},
		{"rolebinding/" + *m.RoleBinding.Name, false, func(ref string) (*Result, error) {
			c := rbac.RoleBindings(ns)
			return one(applyObject(ctx, o, ref, *m.RoleBinding.Name, m.RoleBinding, c.Get, rbacv1ac.ExtractRoleBinding, c.Apply))
		}},
	}
	name := PodReaderName(ns)
	roleRef, bindingRef := "clusterrole/"+name, "clusterrolebinding/"+name
	if m.PodReader != nil {
		steps = append(steps,
			step{roleRef, true, func(ref string) (*Result, error) {
				c := rbac.ClusterRoles()
				return one(applyObject(ctx, o, ref, name, m.PodReader, c.Get, rbacv1ac.ExtractClusterRole, c.Apply))
			}},
			step{bindingRef, true, func(ref string) (*Result, error) {
				c := rbac.ClusterRoleBindings()
				return one(applyObject(ctx, o, ref, name, m.PodReaderBinding, c.Get, rbacv1ac.ExtractClusterRoleBinding, c.Apply))
			}})
	} else {
		// The binding first: a role without a binding grants nothing.
		steps = append(steps,
			step{bindingRef, true, func(ref string) (*Result, error) {
				c := rbac.ClusterRoleBindings()
				out, err := removeOwned(ctx, ref, name, o.ServerDryRun, c.Get, c.Delete)
				return out.result(ref), err
			}},
			step{roleRef, true, func(ref string) (*Result, error) {
				c := rbac.ClusterRoles()
				out, err := removeOwned(ctx, ref, name, o.ServerDryRun, c.Get, c.Delete)
				return out.result(ref), err
			}})
	}
	steps = append(steps,
		step{"configmap/" + *m.ConfigMap.Name, false, func(ref string) (*Result, error) {
			c := core.ConfigMaps(ns)
			return one(applyObject(ctx, o, ref, *m.ConfigMap.Name, m.ConfigMap, c.Get, corev1ac.ExtractConfigMap, c.Apply))
		}},
		step{"daemonset/" + *m.DaemonSet.Name, false, func(ref string) (*Result, error) {
			c := apps.DaemonSets(ns)
			return one(applyObject(ctx, o, ref, *m.DaemonSet.Name, m.DaemonSet, c.Get, appsv1ac.ExtractDaemonSet, c.Apply))
		}})

	var results []Result
	for i, s := range steps {
		var r *Result
		if i > 0 && !s.cluster && o.ServerDryRun && results[0].Action == Created {
			// The namespace exists only in the dry run.
			r = &Result{Ref: s.ref, Action: Skipped}
		} else {
			var err error
			if r, err = s.apply(s.ref); err != nil {
				if s.ref == roleRef || s.ref == bindingRef {
					err = podReaderError{err}
				}
				return results, err
			}
			if r == nil {
				continue
			}
		}
		if n, ok := r.Object.(*corev1.Namespace); ok && n.DeletionTimestamp != nil {
			return results, fmt.Errorf("namespace %s is being deleted (by an undeploy?) and takes no new objects; deploy again once `kubectl get namespace %s` finds nothing", ns, ns)
		}
		results = append(results, *r)
		if o.Report != nil {
			o.Report(*r)
		}
	}
	return results, nil
}

// apiObject is a typed API object pointer, such as *corev1.ConfigMap.
type apiObject interface {
	runtime.Object
	GetResourceVersion() string
}

// applyObject applies desired, one object of any kind: get, extract and
// apply are the kind's typed client methods and client-go's extractor.
func applyObject[O apiObject, C any](ctx context.Context, o ApplyOptions, ref, name string, desired C,
	get func(context.Context, string, metav1.GetOptions) (O, error),
	extract func(O, string) (C, error),
	apply func(context.Context, C, metav1.ApplyOptions) (O, error),
) (Result, error) {
	cur, err := get(ctx, name, metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return Result{}, apiError("read "+ref, err)
	}
	same := false
	if exists {
		owned, err := extract(cur, kubeschema.FieldManager)
		if err != nil {
			return Result{}, fmt.Errorf("read %s: fields owned by %s: %w", ref, kubeschema.FieldManager, err)
		}
		if same, err = sameJSON(owned, desired); err != nil {
			return Result{}, fmt.Errorf("compare %s: %w", ref, err)
		}
	}
	if same && !o.ServerDryRun {
		printed, err := forPrinting(cur)
		if err != nil {
			return Result{}, err
		}
		return Result{Ref: ref, Action: Unchanged, Object: printed}, nil
	}
	opts := metav1.ApplyOptions{FieldManager: kubeschema.FieldManager, Force: o.Force}
	if o.ServerDryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := apply(ctx, desired, opts)
	if err != nil {
		return Result{}, applyError(ref, err)
	}
	action := Configured
	switch {
	case !exists:
		action = Created
	case same:
		action = Unchanged
	case !o.ServerDryRun && out.GetResourceVersion() != "" && out.GetResourceVersion() == cur.GetResourceVersion():
		// The server found nothing to change (a field's form differed, not
		// its value).
		action = Unchanged
	}
	printed, err := forPrinting(out)
	if err != nil {
		return Result{}, err
	}
	return Result{Ref: ref, Action: action, Object: printed}, nil
}

// sameJSON reports whether two apply configurations are the same fields
// with the same values.
func sameJSON(a, b any) (bool, error) {
	ja, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ja, jb), nil
}

// conflictManager finds the manager in a conflict cause's message, which
// reads `conflict with "kubectl-edit"` and may go on with the operation's
// API version and time.
var conflictManager = regexp.MustCompile(`conflict with "((?:[^"\\]|\\.)*)"`)

// applyError turns an apply conflict into a ConflictError and names the
// object and the API's reason in every other error.
func applyError(ref string, err error) error {
	var status apierrors.APIStatus
	if apierrors.IsConflict(err) && errors.As(err, &status) {
		st := status.Status()
		if st.Details != nil {
			ce := &ConflictError{Ref: ref}
			for _, c := range st.Details.Causes {
				if c.Type != metav1.CauseTypeFieldManagerConflict {
					continue
				}
				fc := FieldConflict{Field: c.Field, Manager: c.Message}
				if m := conflictManager.FindStringSubmatch(c.Message); m != nil {
					fc.Manager = m[1]
				}
				ce.Conflicts = append(ce.Conflicts, fc)
			}
			if len(ce.Conflicts) > 0 {
				return ce
			}
		}
	}
	return apiError("apply "+ref, err)
}

// apiError prefixes err with what failed and the API's reason, such as
// "apply daemonset/drmfilter-agent: Forbidden: ...".
func apiError(what string, err error) error {
	if reason := apierrors.ReasonForError(err); reason != metav1.StatusReasonUnknown {
		return fmt.Errorf("%s: %s: %w", what, reason, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
