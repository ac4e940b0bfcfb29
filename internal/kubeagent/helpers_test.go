package kubeagent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// policyYAML is a valid policy named name.
func policyYAML(name string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: %s}
spec:
  files: {paths: ["/srv/kubeagent-test/%s/**"]}
  rules:
    - {name: others, operations: [open], effect: deny}
`, name, name)
}

// badPolicyYAML fails validation (an empty file selector).
const badPolicyYAML = "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: bad}\nspec: {files: {}, rules: []}\n"

func policyConfigMap(ns string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.PolicyConfigMap, Namespace: ns}, Data: data}
}

// hashOf is the policy hash of data as the deploy command computes it.
func hashOf(t *testing.T, data map[string]string) string {
	t.Helper()
	set, err := policy.Load(ConfigMapSources(policyConfigMap("x", data)), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return set.Hash
}

// newAgent builds a real agent (never Run: no fanotify is needed) that
// loads its policies from src; it watches paths (WatchPolicies).
func newAgent(t *testing.T, src func() ([]policy.Source, error), paths ...string) *agent.Agent {
	t.Helper()
	cfg := config.Default()
	cfg.Policies = append(paths, t.TempDir())
	cfg.Audit.File = ""
	cfg.MetricsAddress = ""
	cfg.StatusSocket = ""
	cfg.CRI.Disabled = true
	env := &environ.Report{Hypervisor: "kvm", Cloud: "none", Container: "none"}
	a, err := agent.New(agent.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Env: env, PolicySource: src})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// eventually fails the test if cond is not true within a minute; the
// bound only keeps a broken test from hanging (CI machines are loaded).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run starts fn in a goroutine and stops it at the end of the test.
func run(t *testing.T, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// configMapVolume lays out dir as the kubelet lays out a ConfigMap volume:
// the files live in a timestamped directory, ..data points at it, and each
// key is a symlink through ..data. Calling the returned function again
// swaps in new content atomically, as the kubelet does on an update.
func configMapVolume(t *testing.T, dir string) func(stamp string, data map[string]string) {
	t.Helper()
	return func(stamp string, data map[string]string) {
		t.Helper()
		ts := "..2026_11_26_22_" + stamp
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range data {
			if err := os.WriteFile(filepath.Join(dir, ts, k), []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, k)
			if _, err := os.Lstat(link); os.IsNotExist(err) {
				if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
					t.Fatal(err)
				}
			}
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
}
