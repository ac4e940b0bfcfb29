package kubeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// WatcherOptions configure a PolicyWatcher.
type WatcherOptions struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// Namespace holds the ConfigMap; kubeschema.DefaultNamespace when empty.
	Namespace string
	// Name is the ConfigMap; kubeschema.PolicyConfigMap when empty.
	Name string
	// VolumePaths are the mounted copy of the ConfigMap (policy files or
	// directories), read while the API copy cannot be used.
	VolumePaths []string
	// Logger receives diagnostics; slog.Default() when nil.
	Logger *slog.Logger
}

// PolicyWatcher watches the policy ConfigMap through the API server and
// serves its policies to the agent. Create it with NewPolicyWatcher, start
// it with Run.
type PolicyWatcher struct {
	opts     WatcherOptions
	log      *slog.Logger
	informer cache.SharedIndexInformer
	key      string // namespace/name in the informer's store

	changed chan struct{} // a change to pass on to OnChange, coalesced

	mu       sync.Mutex
	apiUp    bool   // the last list or watch request succeeded
	apiErr   error  // why the last one failed
	source   string // where the last Sources call read from
	reported bool   // the loss of the API server has been logged

	onChange atomic.Pointer[func()]
}

// NewPolicyWatcher prepares a watcher; nothing is requested before Run.
func NewPolicyWatcher(opts WatcherOptions) *PolicyWatcher {
	if opts.Namespace == "" {
		opts.Namespace = kubeschema.DefaultNamespace
	}
	if opts.Name == "" {
		opts.Name = kubeschema.PolicyConfigMap
	}
	w := &PolicyWatcher{opts: opts, log: opts.Logger, key: opts.Namespace + "/" + opts.Name, changed: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.Default()
	}
	// The Role grants list and watch on this one ConfigMap (resourceNames):
	// the API server authorizes a list or watch against resourceNames only
	// when the request selects that name with a field selector.
	byName := fields.OneTermEqualSelector("metadata.name", opts.Name).String()
	cms := opts.Client.CoreV1().ConfigMaps(opts.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			l, err := cms.List(ctx, o)
			w.requested(err)
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			wi, err := cms.Watch(ctx, o)
			w.requested(err)
			return wi, err
		},
	}
	w.informer = cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, opts.Client),
		&corev1.ConfigMap{}, cache.SharedIndexInformerOptions{})
	_ = w.informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.requested(err)
	})
	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.event(obj) },
		UpdateFunc: func(_, obj any) { w.event(obj) },
		DeleteFunc: func(obj any) { w.event(obj) },
	})
	return w
}

// OnChange sets the function called (from one goroutine, never
// concurrently) after the ConfigMap changes, and when the API server is
// reached again after an outage. The agent passes its Reload. Setting it
// also calls it once, so that no change seen before is lost.
func (w *PolicyWatcher) OnChange(fn func()) {
	w.onChange.Store(&fn)
	w.notify()
}

// Run watches the ConfigMap until ctx is done. client-go's reflector
// retries, with backoff, while the API server cannot be reached.
func (w *PolicyWatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.informer.RunWithContext(ctx)
	}()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-w.changed:
			if fn := w.onChange.Load(); fn != nil {
				(*fn)()
			}
		}
	}
}

// WaitForSync waits until the first list of the ConfigMap has been stored,
// or ctx is done; it reports whether it was.
func (w *PolicyWatcher) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced)
}

// Source says where the last Sources call read the policies from:
// kubeschema.SourceAPI or kubeschema.SourceVolume ("" before the first).
func (w *PolicyWatcher) Source() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.source
}

// Sources returns the policy files of the ConfigMap: its keys ending in
// .yaml or .yml, in key order, each named by its key, so that they hash as
// the mounted files of the same ConfigMap do. Before the watch has synced,
// and while the API server cannot be reached, it reads VolumePaths instead.
// It is the agent's PolicySource.
func (w *PolicyWatcher) Sources() ([]policy.Source, error) {
	w.mu.Lock()
	up, apiErr := w.apiUp, w.apiErr
	w.mu.Unlock()
	if up && w.informer.HasSynced() {
		srcs, err := w.fromAPI()
		w.setSource(kubeschema.SourceAPI)
		return srcs, err
	}
	reason := "the policy ConfigMap has not been read from the API server yet"
	if apiErr != nil {
		reason = "the API server cannot be reached: " + apiErr.Error()
	}
	w.log.Warn("reading the mounted copy of the policy ConfigMap", "reason", reason, "paths", w.opts.VolumePaths)
	w.setSource(kubeschema.SourceVolume)
	if len(w.opts.VolumePaths) == 0 {
		return nil, fmt.Errorf("policy configmap %s: %s, and no mounted copy is configured", w.key, reason)
	}
	srcs, err := policy.ReadPaths(w.opts.VolumePaths)
	if err != nil {
		return nil, fmt.Errorf("mounted policy configmap (%s): %w", reason, err)
	}
	return srcs, nil
}

func (w *PolicyWatcher) fromAPI() ([]policy.Source, error) {
	obj, ok, err := w.informer.GetStore().GetByKey(w.key)
	if err != nil {
		return nil, fmt.Errorf("policy configmap %s: %w", w.key, err)
	}
	if !ok {
		return nil, fmt.Errorf("policy configmap %s: not found", w.key)
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil, fmt.Errorf("policy configmap %s: unexpected object %T", w.key, obj)
	}
	srcs := ConfigMapSources(cm)
	if len(srcs) == 0 {
		return nil, fmt.Errorf("policy configmap %s: no policy keys (*.yaml, *.yml)", w.key)
	}
	return srcs, nil
}

// ConfigMapSources returns the policy files a ConfigMap carries: its data
// keys ending in .yaml or .yml, sorted by key, named by key.
func ConfigMapSources(cm *corev1.ConfigMap) []policy.Source {
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		if !strings.HasPrefix(k, ".") && (strings.HasSuffix(k, ".yaml") || strings.HasSuffix(k, ".yml")) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	srcs := make([]policy.Source, 0, len(keys))
	for _, k := range keys {
		srcs = append(srcs, policy.Source{Name: k, Data: []byte(cm.Data[k])})
	}
	return srcs
}

func (w *PolicyWatcher) setSource(s string) {
	w.mu.Lock()
	w.source = s
	w.mu.Unlock()
}

// requested records the outcome of a list or watch request. Coming back
// after an outage counts as a change: the agent may be running the mounted
// copy, and re-reads the API's.
func (w *PolicyWatcher) requested(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		// A canceled request is the watcher stopping; an expired resource
		// version or a closed stream is routine, and the re-list that
		// follows tells whether the API server answers.
		if errors.Is(err, context.Canceled) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		if w.apiUp || !w.reported {
			w.log.Warn("cannot watch the policy ConfigMap through the API server; retrying, and the mounted copy is read meanwhile",
				"configmap", w.key, "error", err)
			w.reported = true
		}
		w.apiUp, w.apiErr = false, err
		return
	}
	recovered := !w.apiUp && w.apiErr != nil
	w.apiUp, w.apiErr = true, nil
	if recovered {
		w.log.Info("watching the policy ConfigMap through the API server again", "configmap", w.key)
		w.reported = false
		w.notify()
	}
}

// event passes on a change of the watched ConfigMap.
func (w *PolicyWatcher) event(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Namespace+"/"+cm.Name != w.key {
		return
	}
	w.notify()
}

func (w *PolicyWatcher) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}
