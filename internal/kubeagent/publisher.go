package kubeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// Publication defaults.
const (
	DefaultInterval      = 30 * time.Second
	DefaultLeaseDuration = 90 * time.Second
	// checkEvery is how often the publisher looks for a change of the
	// agent's status worth publishing before the next interval.
	checkEvery = time.Second
	// finalTimeout bounds the last publication when the agent stops.
	finalTimeout = 3 * time.Second
)

// PublisherOptions configure a StatusPublisher.
type PublisherOptions struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// Namespace holds the Lease; kubeschema.DefaultNamespace when empty.
	Namespace string
	// Node and Pod are the agent's node and pod; Node is required.
	Node, Pod string
	// Status returns the agent's status (agent.Agent.Status).
	Status func() agent.Status
	// Source says where the policy was read from (PolicyWatcher.Source);
	// nil leaves NodeStatus.PolicySource empty.
	Source func() string
	// Interval between publications; DefaultInterval when zero.
	Interval time.Duration
	// LeaseDuration is the Lease's leaseDurationSeconds, after which a
	// silent agent counts as stale; DefaultLeaseDuration when zero.
	LeaseDuration time.Duration
	// Logger receives diagnostics; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// StatusPublisher writes its node's status Lease. Create it with
// NewStatusPublisher; publish with Publish, or Run to publish until the
// context is done.
type StatusPublisher struct {
	opts    PublisherOptions
	log     *slog.Logger
	name    string
	trigger chan struct{}

	mu        sync.Mutex
	forbidden bool                  // a Forbidden answer has been logged
	last      kubeschema.NodeStatus // what was published last, UpdatedAt cleared
}

// NewStatusPublisher checks the options and prepares a publisher.
func NewStatusPublisher(opts PublisherOptions) (*StatusPublisher, error) {
	if opts.Client == nil || opts.Status == nil {
		return nil, errors.New("status publisher: a client and a status function are required")
	}
	if opts.Node == "" {
		return nil, fmt.Errorf("status publisher: the node name is not known (set $%s or --node-name)", kubeschema.EnvNodeName)
	}
	if opts.Namespace == "" {
		opts.Namespace = kubeschema.DefaultNamespace
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &StatusPublisher{opts: opts, log: opts.Logger, name: kubeschema.NodeStatusName(opts.Node), trigger: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// LeaseName is the name of the Lease the publisher writes.
func (p *StatusPublisher) LeaseName() string { return p.name }

// Trigger asks Run to publish now (after a reload attempt).
func (p *StatusPublisher) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Run publishes at once, then every interval, on Trigger, and when the
// agent's status changes, until ctx is done; then it publishes once more,
// not ready, so that a stopped agent does not look ready until its Lease
// expires. Failures are logged and retried at the next occasion.
func (p *StatusPublisher) Run(ctx context.Context) {
	next := time.NewTimer(0)
	defer next.Stop()
	check := time.NewTicker(checkEvery)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			p.stopping()
			return
		case <-check.C:
			if !p.changed() {
				continue
			}
		case <-p.trigger:
		case <-next.C:
		}
		if err := p.Publish(ctx); err != nil && ctx.Err() == nil && !apierrors.IsForbidden(err) {
			p.log.Warn("publishing the node status failed; retrying", "lease", p.name, "error", err)
		}
		next.Reset(p.opts.Interval)
	}
}

// stopping publishes that the agent is no longer ready, within
// finalTimeout.
func (p *StatusPublisher) stopping() {
	ctx, cancel := context.WithTimeout(context.Background(), finalTimeout)
	defer cancel()
	ns := p.NodeStatus()
	ns.Ready = false
	if err := p.publish(ctx, ns); err != nil && !apierrors.IsForbidden(err) {
		p.log.Warn("publishing that the agent stops failed", "lease", p.name, "error", err)
	}
}

// NodeStatus is the record the publisher would publish now.
func (p *StatusPublisher) NodeStatus() kubeschema.NodeStatus {
	st := p.opts.Status()
	ns := kubeschema.NodeStatus{
		Node:             p.opts.Node,
		Pod:              p.opts.Pod,
		AgentVersion:     st.Version,
		Ready:            st.Ready,
		Mode:             st.Mode,
		Backend:          st.Backend,
		BackendReason:    st.BackendReason,
		PolicyHash:       st.Policy.Hash,
		PolicyGeneration: st.Policy.Generation,
		PolicyError:      st.Policy.Error,
		Hypervisor:       st.Environment.Hypervisor,
		Cloud:            st.Environment.Cloud,
		Container:        st.Environment.Container,
		Nested:           st.Environment.Nested,
	}
	if p.opts.Source != nil {
		ns.PolicySource = p.opts.Source()
	}
	return ns
}

// changed reports whether the status differs from the last publication.
func (p *StatusPublisher) changed() bool {
	ns := p.NodeStatus()
	p.mu.Lock()
	defer p.mu.Unlock()
	return ns != p.last
}

// Publish writes the node's status Lease once: it creates the Lease if it
// does not exist and updates it otherwise, re-reading it on a conflict.
func (p *StatusPublisher) Publish(ctx context.Context) error {
	return p.publish(ctx, p.NodeStatus())
}

func (p *StatusPublisher) publish(ctx context.Context, ns kubeschema.NodeStatus) error {
	now := p.opts.Now()
	rec := ns
	rec.UpdatedAt = now.UTC()
	val, err := rec.Encode()
	if err != nil {
		return err
	}
	leases := p.opts.Client.CoordinationV1().Leases(p.opts.Namespace)
	renew := metav1.NewMicroTime(now)
	holder := p.holder()
	seconds := int32(p.opts.LeaseDuration / time.Second)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, p.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.opts.Namespace}}
			p.fill(l, val, holder, seconds, renew)
			l.Spec.AcquireTime = &renew
			_, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: kubeschema.FieldManager})
			if apierrors.IsAlreadyExists(err) {
				// Created between our get and create: retry as a conflict.
				return apierrors.NewConflict(coordinationv1.Resource("leases"), p.name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != holder {
			l.Spec.AcquireTime = &renew
			if l.Spec.HolderIdentity != nil {
				n := int32(1)
				if l.Spec.LeaseTransitions != nil {
					n += *l.Spec.LeaseTransitions
				}
				l.Spec.LeaseTransitions = &n
			}
		}
		p.fill(l, val, holder, seconds, renew)
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: kubeschema.FieldManager})
		return err
	})
	if err != nil {
		if apierrors.IsForbidden(err) {
			p.reportForbidden(err)
		}
		return fmt.Errorf("publish node status lease %s/%s: %w", p.opts.Namespace, p.name, err)
	}
	p.mu.Lock()
	p.last = ns
	p.forbidden = false
	p.mu.Unlock()
	return nil
}

func (p *StatusPublisher) holder() string {
	if p.opts.Pod != "" {
		return p.opts.Pod
	}
	return p.opts.Node
}

func (p *StatusPublisher) fill(l *coordinationv1.Lease, val, holder string, seconds int32, renew metav1.MicroTime) {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[kubeschema.LabelName] = kubeschema.LabelNameValue
	// A label value holds at most 63 characters, a node name up to 253:
	// the Lease's name and the record still name the node.
	if len(validation.IsValidLabelValue(p.opts.Node)) == 0 {
		l.Labels[kubeschema.LabelNode] = p.opts.Node
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[kubeschema.AnnotationNodeStatus] = val
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &seconds
	l.Spec.RenewTime = &renew
}

// reportForbidden logs a Forbidden answer once until a publication
// succeeds: it means the Role does not grant what the agent needs, which
// no retry fixes.
func (p *StatusPublisher) reportForbidden(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.forbidden {
		return
	}
	p.forbidden = true
	p.log.Error("the API server forbids writing the node status Lease: the agent's Role must grant create, get, update and patch on leases in its namespace (drmfilter deploy kubernetes creates it)",
		"lease", p.name, "namespace", p.opts.Namespace, "error", err)
}
