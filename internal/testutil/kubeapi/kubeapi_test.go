package kubeapi_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drmfilter/drmfilter/internal/testutil/kubeapi"
)

var kube kubeapi.Shared

func TestMain(m *testing.M) { os.Exit(kube.Run(m)) }

// TestServer stores and reads back objects as the admin, and checks that
// RBAC is enforced for an impersonated ServiceAccount without any binding.
func TestServer(t *testing.T) {
	srv := kube.Get(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatalf("admin clientset: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubeapi-test"}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "policy", Namespace: ns.Name},
		Data:       map[string]string{"rules.yaml": "deny: []\n"},
	}
	if _, err := admin.CoreV1().ConfigMaps(ns.Name).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	got, err := admin.CoreV1().ConfigMaps(ns.Name).Get(ctx, cm.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get configmap: %v", err)
	}
	if got.Data["rules.yaml"] != cm.Data["rules.yaml"] {
		t.Errorf("configmap data = %q, want %q", got.Data, cm.Data)
	}

	agent, err := kubernetes.NewForConfig(srv.ImpersonateServiceAccount(ns.Name, "agent"))
	if err != nil {
		t.Fatalf("impersonating clientset: %v", err)
	}
	_, err = agent.CoreV1().Secrets(ns.Name).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list secrets as a ServiceAccount without RBAC: err = %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), "system:serviceaccount:"+ns.Name+":agent") {
		t.Errorf("Forbidden error does not name the impersonated ServiceAccount: %v", err)
	}
	// The same ServiceAccount may read what any authenticated user may.
	if _, err := agent.Discovery().ServerVersion(); err != nil {
		t.Errorf("server version as the ServiceAccount: %v", err)
	}
}

// TestKubeconfig checks that the written kubeconfig reaches the same
// server as the admin, through its named context.
func TestKubeconfig(t *testing.T) {
	srv := kube.Get(t)
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: srv.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kubeapi.ContextName},
	).ClientConfig()
	if err != nil {
		t.Fatalf("load %s: %v", srv.Kubeconfig, err)
	}
	if cfg.Host != srv.URL {
		t.Errorf("kubeconfig server = %q, want %q", cfg.Host, srv.URL)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version through kubeconfig: %v", err)
	}
	if v.GitVersion != kubeapi.Version {
		t.Logf("server reports %s, package expects %s", v.GitVersion, kubeapi.Version)
	}
}

// TestStart starts a second, private server and checks that it is
// independent of the shared one.
func TestStart(t *testing.T) {
	srv := kubeapi.Start(t)
	if srv.URL == kube.Get(t).URL {
		t.Fatalf("Start returned the shared server's URL %s", srv.URL)
	}
	cs, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "kubeapi-test", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace of the shared server in a private one: err = %v, want NotFound", err)
	}
}
