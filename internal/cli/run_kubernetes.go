//go:build !nok8s

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/kubeagent"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// startCluster connects to the API server and starts the in-cluster side of
// the agent with --kubernetes; without it, it returns nil.
func startCluster(ctx context.Context, f *runFlags, cfg config.Config, log *slog.Logger) (clusterNode, error) {
	if !f.kubernetes {
		return nil, nil
	}
	o := kubeagent.Options{Node: f.nodeName, Pod: os.Getenv(kubeschema.EnvPodName), Namespace: f.kubeNamespace}
	if o.Node == "" {
		o.Node = os.Getenv(kubeschema.EnvNodeName)
	}
	if o.Node == "" {
		return nil, withCode(exitcode.Usage, fmt.Errorf("--kubernetes: the node name is not known: set $%s (the DaemonSet sets it from spec.nodeName) or --node-name", kubeschema.EnvNodeName))
	}
	if o.Namespace == "" {
		o.Namespace = os.Getenv(kubeschema.EnvPodNamespace)
	}
	if o.Namespace == "" {
		o.Namespace = kubeschema.DefaultNamespace
	}
	client, err := kubeagent.Connect(f.kubeconfig)
	if err != nil {
		return nil, withCode(exitcode.Failure, err)
	}
	o.Client, o.PolicyPaths, o.Logger = client, cfg.Policies, log
	node, err := kubeagent.Start(ctx, o)
	if err != nil {
		return nil, withCode(exitcode.Failure, err)
	}
	return kubeNode{node}, nil
}

// kubeNode gives kubeagent.Node the clusterNode method set.
type kubeNode struct{ *kubeagent.Node }

func (n kubeNode) Run(ctx context.Context, a *agent.Agent) error { return n.Node.Run(ctx, a) }
