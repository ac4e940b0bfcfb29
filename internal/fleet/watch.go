package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	// Recheck is how often the report is rebuilt without an event (a
	// silent agent turns stale without any object changing); 5 s when zero.
	Recheck time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Watch calls fn with a report at once and again after every change
// (ignoring mere renewals of the Leases), until fn returns true or ctx is
// done. It watches the namespace's DaemonSet, policy ConfigMap, pods and
// Leases through informers.
func Watch(ctx context.Context, c kubernetes.Interface, ns string, opts WatchOptions, fn func(*Report) bool) error {
	if opts.Recheck <= 0 {
		opts.Recheck = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace(ns))
	dss, cms, pods, leases := f.Apps().V1().DaemonSets(), f.Core().V1().ConfigMaps(), f.Core().V1().Pods(), f.Coordination().V1().Leases()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { notify() }, UpdateFunc: func(any, any) { notify() }, DeleteFunc: func(any) { notify() }}
	var denied atomic.Pointer[error]
	watchErr := func() error {
		if e := denied.Load(); e != nil {
			return *e
		}
		return nil
	}
	for _, inf := range []cache.SharedIndexInformer{dss.Informer(), cms.Informer(), pods.Informer(), leases.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			// Without the right to list, the informer would retry forever.
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				denied.Store(&err)
				cancel()
			}
		})
	}
	f.Start(ctx.Done())
	defer func() {
		cancel() // Shutdown waits for the informers, which stop on ctx
		f.Shutdown()
	}()
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if err := watchErr(); err != nil {
				return fmt.Errorf("watch %s in %s: %w", typ, ns, err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("watch %s in %s: not synced", typ, ns)
		}
	}
	tick := time.NewTicker(opts.Recheck)
	defer tick.Stop()
	var last []byte
	for {
		s := &Snapshot{Namespace: ns}
		if ds, err := dss.Lister().DaemonSets(ns).Get(kubeschema.DaemonSet); err == nil {
			s.DaemonSet = ds
		}
		if cm, err := cms.Lister().ConfigMaps(ns).Get(kubeschema.PolicyConfigMap); err == nil {
			s.ConfigMap = cm
		}
		sel, err := podSelector(s)
		if err != nil {
			return err
		}
		ps, err := pods.Lister().Pods(ns).List(sel)
		if err != nil {
			return fmt.Errorf("list agent pods: %w", err)
		}
		for _, p := range ps {
			s.Pods = append(s.Pods, *p)
		}
		ls, err := leases.Lister().Leases(ns).List(leaseSelector())
		if err != nil {
			return fmt.Errorf("list node status leases: %w", err)
		}
		for _, l := range ls {
			s.Leases = append(s.Leases, *l)
		}
		r := Build(s, opts.Now())
		if k := r.key(); string(k) != string(last) {
			last = k
			if fn(r) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err := watchErr(); err != nil {
				return fmt.Errorf("watch in %s: %w", ns, err)
			}
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

// key is what makes two reports different to a reader: everything but the
// time, the renewals and the publication times.
func (r *Report) key() []byte {
	c := *r
	c.Time = time.Time{}
	c.Nodes = make([]Node, len(r.Nodes))
	for i, n := range r.Nodes {
		n.RenewTime = nil
		if n.Status != nil {
			st := *n.Status
			st.UpdatedAt = time.Time{}
			n.Status = &st
		}
		c.Nodes[i] = n
	}
	b, _ := json.Marshal(c) // plain data: it cannot fail
	return b
}
