package kubeagent

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
)

func names(srcs []policy.Source) string {
	var n []string
	for _, s := range srcs {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

func TestWatcherServesTheConfigMapAndCallsBackOnChange(t *testing.T) {
	ns := "drmfilter"
	client := fake.NewClientset(
		policyConfigMap(ns, map[string]string{"b.yml": policyYAML("b"), "a.yaml": policyYAML("a"), "README.md": "not a policy"}),
		// Another ConfigMap of the namespace changes nothing.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns}, Data: map[string]string{"x.yaml": "x"}},
	)
	w := NewPolicyWatcher(WatcherOptions{Client: client, Namespace: ns, VolumePaths: []string{t.TempDir()}})
	var calls atomic.Int32
	w.OnChange(func() { calls.Add(1) })
	run(t, w.Run)
	if !w.WaitForSync(context.Background()) {
		t.Fatal("watch never synced")
	}
	srcs, err := w.Sources()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(srcs); got != "a.yaml,b.yml" || string(srcs[0].Data) != policyYAML("a") {
		t.Fatalf("sources %s, want a.yaml,b.yml with their content", got)
	}
	if w.Source() != kubeschema.SourceAPI {
		t.Fatalf("source %q, want %q", w.Source(), kubeschema.SourceAPI)
	}
	eventually(t, "the first callback", func() bool { return calls.Load() >= 1 })
	before := calls.Load()

	cms := client.CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(context.Background(), kubeschema.PolicyConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"c.yaml": policyYAML("c")}
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a callback after the update", func() bool { return calls.Load() > before })
	srcs, err = w.Sources()
	if err != nil || names(srcs) != "c.yaml" {
		t.Fatalf("after the update: sources %s, %v", names(srcs), err)
	}

	if err := cms.Delete(context.Background(), kubeschema.PolicyConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion to be seen", func() bool {
		_, err := w.Sources()
		return err != nil && strings.Contains(err.Error(), "drmfilter/drmfilter-policies: not found")
	})
}

// TestWatcherFallsBackToTheVolumeAndRecovers: while list and watch fail
// the mounted copy is read; once the API server answers, the watcher
// calls back and serves the API's copy.
func TestWatcherFallsBackToTheVolumeAndRecovers(t *testing.T) {
	ns := "drmfilter"
	client := fake.NewClientset(policyConfigMap(ns, map[string]string{"api.yaml": policyYAML("api")}))
	var down atomic.Bool
	down.Store(true)
	unreachable := errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
	client.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return down.Load(), nil, unreachable
	})
	client.PrependWatchReactor("configmaps", func(k8stesting.Action) (bool, watch.Interface, error) {
		return down.Load(), nil, unreachable
	})
	vol := t.TempDir()
	configMapVolume(t, vol)("00_00.1", map[string]string{"vol.yaml": policyYAML("vol")})
	logs := &logBuffer{}
	w := NewPolicyWatcher(WatcherOptions{Client: client, Namespace: ns, VolumePaths: []string{vol}, Logger: logs.logger()})
	var calls atomic.Int32
	run(t, w.Run)
	eventually(t, "a failed list", func() bool { return strings.Contains(logs.String(), "connection refused") })
	srcs, err := w.Sources()
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || !strings.HasSuffix(srcs[0].Name, "/vol.yaml") || w.Source() != kubeschema.SourceVolume {
		t.Fatalf("while the API is down: sources %s from %q, want the volume's vol.yaml", names(srcs), w.Source())
	}
	w.OnChange(func() { calls.Add(1) })
	eventually(t, "the callback of OnChange", func() bool { return calls.Load() == 1 })

	down.Store(false)
	eventually(t, "a callback once the API server answers", func() bool { return calls.Load() >= 2 })
	eventually(t, "the API's copy", func() bool {
		srcs, err := w.Sources()
		return err == nil && names(srcs) == "api.yaml" && w.Source() == kubeschema.SourceAPI
	})
	if !strings.Contains(logs.String(), "watching the policy ConfigMap through the API server again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestVolumeFallbackFollowsTheKubeletSymlinkSwap: with no API server, the
// agent reloads when the kubelet swaps the ..data symlink of the mounted
// ConfigMap, and loads the swapped content.
func TestVolumeFallbackFollowsTheKubeletSymlinkSwap(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("no route to host")
	})
	vol := t.TempDir()
	swap := configMapVolume(t, vol)
	first := map[string]string{"p.yaml": policyYAML("first")}
	swap("00_00.1", first)
	w := NewPolicyWatcher(WatcherOptions{Client: client, VolumePaths: []string{vol}, Logger: (&logBuffer{}).logger()})
	run(t, w.Run)
	a := newAgent(t, w.Sources, vol)
	if got := a.Status().Policy.Hash; got != hashOf(t, first) {
		t.Fatalf("initial hash %s, want the volume's %s", got, hashOf(t, first))
	}
	// The agent watches the volume itself (WatchPolicies); its paths are
	// the same mount the watcher falls back to.
	run(t, func(ctx context.Context) { _ = a.WatchPolicies(ctx) })
	select {
	case <-a.PolicyWatchReady():
	case <-time.After(time.Minute):
		t.Fatal("the policy watch never became ready")
	}
	second := map[string]string{"p.yaml": policyYAML("second")}
	swap("01_00.1", second)
	want := hashOf(t, second)
	eventually(t, "the swapped content to be loaded", func() bool { return a.Status().Policy.Hash == want })
	if w.Source() != kubeschema.SourceVolume {
		t.Errorf("source %q, want %q", w.Source(), kubeschema.SourceVolume)
	}
}

// TestRoutineWatchEndingsAreNotOutages: an expired resource version or a
// closed stream does not switch the agent to the mounted copy; a refused
// connection does.
func TestRoutineWatchEndingsAreNotOutages(t *testing.T) {
	w := NewPolicyWatcher(WatcherOptions{Client: fake.NewClientset(), Logger: (&logBuffer{}).logger()})
	w.requested(nil)
	for _, err := range []error{apierrors.NewResourceExpired("too old resource version: 1 (5)"), io.EOF, io.ErrUnexpectedEOF, context.Canceled} {
		if w.requested(err); !w.apiUp {
			t.Errorf("%v counted as an outage", err)
		}
	}
	if w.requested(errors.New("dial tcp 10.96.0.1:443: connect: connection refused")); w.apiUp {
		t.Error("a refused connection is not counted as an outage")
	}
}
