package fleet

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/testutil/kubeapi"
)

// TestWatchWithoutTheRightToRead: a user who may not list the fleet's
// objects gets the API server's refusal at once, not a wait that retries
// until the timeout; the same for Fetch.
func TestWatchWithoutTheRightToRead(t *testing.T) {
	srv := kubeapi.Start(t)
	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nobody, err := kubernetes.NewForConfig(srv.Impersonate("nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(ctx, nobody, ns); !apierrors.IsForbidden(err) {
		t.Errorf("Fetch: %v, want Forbidden", err)
	}
	called := false
	err = Watch(ctx, nobody, ns, WatchOptions{}, func(*Report) bool { called = true; return true })
	if !apierrors.IsForbidden(err) || called || ctx.Err() != nil {
		t.Fatalf("Watch: %v (report given %v), want Forbidden before the deadline", err, called)
	}
}
