package kubernetes

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// ErrPodReader is matched by an error of Apply about the pod reader
// ClusterRole or ClusterRoleBinding, such as a deployer who may not create
// cluster-wide RBAC objects (Options.NoPodReader deploys without them).
var ErrPodReader = errors.New("pod reader ClusterRole or ClusterRoleBinding")

// podReaderError is an API error about the pod reader: its message is the
// API error's, and it matches both that error and ErrPodReader.
type podReaderError struct{ err error }

func (e podReaderError) Error() string        { return e.err.Error() }
func (e podReaderError) Unwrap() error        { return e.err }
func (e podReaderError) Is(target error) bool { return target == ErrPodReader }

// removal is what removeOwned did.
type removal struct {
	// absent: there was no such object, or it went away meanwhile.
	absent bool
	// note, if set, says why the object was kept.
	note string
}

// removeOwned deletes the cluster-scoped object name if deploy made it (it
// carries kubeschema.LabelManagedBy=drmfilter), and only the very object it
// read (a UID precondition). An object it may not read is reported as kept,
// not as an error: a deployer without cluster-wide rights, who deploys
// without the pod reader, can still deploy and undeploy. With dryRun the
// server checks the delete and deletes nothing.
func removeOwned[O metav1.Object](ctx context.Context, ref, name string, dryRun bool,
	get func(context.Context, string, metav1.GetOptions) (O, error),
	del func(context.Context, string, metav1.DeleteOptions) error,
) (removal, error) {
	cur, err := get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return removal{absent: true}, nil
	case apierrors.IsForbidden(err):
		return removal{note: "these credentials may not read it (Forbidden), so it was not checked; if an earlier deploy made it, a cluster administrator can delete it"}, nil
	case err != nil:
		return removal{}, apiError("read "+ref, err)
	}
	if cur.GetLabels()[kubeschema.LabelManagedBy] != kubeschema.LabelManagedByValue {
		return removal{note: fmt.Sprintf("it lacks the label %s=%s that deploy sets", kubeschema.LabelManagedBy, kubeschema.LabelManagedByValue)}, nil
	}
	uid := cur.GetUID()
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err = del(ctx, name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return removal{absent: true}, nil
	case err != nil:
		return removal{}, apiError("delete "+ref, err)
	}
	return removal{}, nil
}

// result is the Result of a removal: none when there was no such object.
func (r removal) result(ref string) *Result {
	switch {
	case r.absent:
		return nil
	case r.note != "":
		return &Result{Ref: ref, Action: Kept, Note: r.note}
	}
	return &Result{Ref: ref, Action: Deleted}
}
