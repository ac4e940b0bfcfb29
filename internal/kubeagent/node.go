package kubeagent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// DefaultSyncTimeout bounds how long Start waits for the first read of the
// policy ConfigMap before the agent loads the mounted copy instead.
const DefaultSyncTimeout = 10 * time.Second

// Options configure the agent's in-cluster side.
type Options struct {
	// Client reaches the API server (Connect).
	Client kubernetes.Interface
	// Namespace holds the policy ConfigMap and the status Leases;
	// kubeschema.DefaultNamespace when empty.
	Namespace string
	// Node and Pod are where the agent runs; Node is required.
	Node, Pod string
	// PolicyPaths are the mounted copy of the policy ConfigMap.
	PolicyPaths []string
	// Interval and LeaseDuration tune the status publication (see
	// PublisherOptions); zero means the defaults.
	Interval, LeaseDuration time.Duration
	// SyncTimeout is DefaultSyncTimeout when zero.
	SyncTimeout time.Duration
	// Logger receives diagnostics; slog.Default() when nil.
	Logger *slog.Logger
}

// Agent is what the in-cluster side needs of the node agent
// (*agent.Agent).
type Agent interface {
	Reload() error
	Status() agent.Status
}

// Node is the agent's in-cluster side: the policy watcher and the status
// publisher of one node.
type Node struct {
	opts    Options
	log     *slog.Logger
	watcher *PolicyWatcher
	pods    *PodLabels
	wg      sync.WaitGroup
}

// Start checks the options, starts watching the policy ConfigMap (until
// ctx is done) and waits, at most SyncTimeout, for its first read, so
// that the agent created next loads the API server's copy. When the API
// server does not answer in time the agent starts from the mounted copy,
// and picks the API's up as soon as it is read.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if _, err := NewStatusPublisher(PublisherOptions{Client: opts.Client, Node: opts.Node, Status: func() agent.Status { return agent.Status{} }}); err != nil {
		return nil, err
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	n := &Node{opts: opts, log: opts.Logger}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.watcher = NewPolicyWatcher(WatcherOptions{Client: opts.Client, Namespace: opts.Namespace, VolumePaths: opts.PolicyPaths, Logger: n.log})
	n.pods = NewPodLabels(opts.Client, opts.Node, n.log)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.watcher.Run(ctx)
	}()
	go func() {
		defer n.wg.Done()
		n.pods.Run(ctx)
	}()
	sctx, cancel := context.WithTimeout(ctx, opts.SyncTimeout)
	defer cancel()
	if !n.watcher.WaitForSync(sctx) && ctx.Err() == nil {
		n.log.Warn("the policy ConfigMap could not be read through the API server in time; starting from the mounted copy",
			"timeout", opts.SyncTimeout, "paths", opts.PolicyPaths)
	}
	return n, nil
}

// Sources is the agent's PolicySource (PolicyWatcher.Sources).
func (n *Node) Sources() ([]policy.Source, error) { return n.watcher.Sources() }

// PodLabels is the agent's PodLabels option: the current labels of a pod
// of this node, from the API server (see PodLabels).
func (n *Node) PodLabels(uid string) (map[string]string, bool) { return n.pods.Labels(uid) }

// Watcher is the node's policy watcher.
func (n *Node) Watcher() *PolicyWatcher { return n.watcher }

// Run reloads a whenever the policy ConfigMap changes and publishes its
// status until ctx is done, then waits for the watcher started by Start.
func (n *Node) Run(ctx context.Context, a Agent) error {
	pub, err := NewStatusPublisher(PublisherOptions{
		Client: n.opts.Client, Namespace: n.opts.Namespace, Node: n.opts.Node, Pod: n.opts.Pod,
		Status: a.Status, Source: n.watcher.Source, Interval: n.opts.Interval, LeaseDuration: n.opts.LeaseDuration, Logger: n.log,
	})
	if err != nil {
		return err
	}
	n.watcher.OnChange(func() {
		_ = a.Reload() // the agent logs a rejected policy and reports it in its status
		pub.Trigger()
	})
	pub.Run(ctx)
	n.wg.Wait()
	return nil
}
