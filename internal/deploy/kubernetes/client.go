package kubernetes

import (
	"errors"
	"fmt"

	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drmfilter/drmfilter/internal/version"
)

// ClientOptions say which cluster to talk to, as kubectl's flags do.
type ClientOptions struct {
	// Kubeconfig is a kubeconfig file; empty means $KUBECONFIG (a list of
	// files) or ~/.kube/config, and in a pod the pod's ServiceAccount.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means the current one.
	Context string
}

// RESTConfig loads the client configuration the way kubectl does, with
// errors that say what to do.
func RESTConfig(o ClientOptions) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (the file kubectl uses)")
		}
		return nil, fmt.Errorf("load kubeconfig: %w (check --kubeconfig, KUBECONFIG and --context; `kubectl config get-contexts` lists the contexts)", err)
	}
	cfg.UserAgent = "drmfilter/" + version.Get().Version
	return cfg, nil
}

// NewClient returns a clientset for o.
func NewClient(o ClientOptions) (clientset.Interface, error) {
	cfg, err := RESTConfig(o)
	if err != nil {
		return nil, err
	}
	cs, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}
