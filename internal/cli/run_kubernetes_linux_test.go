//go:build !nok8s

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/kubeapi"
)

// TestRunKubernetesEndToEnd runs `drmfilter run --kubernetes` against a
// real kube-apiserver: the agent loads its policy from the ConfigMap,
// publishes its node's Lease, and a ConfigMap update changes what it
// enforces and what the Lease reports, with no restart and no signal.
func TestRunKubernetesEndToEnd(t *testing.T) {
	testutil.RequireFanotify(t)
	srv := kubeapi.Start(t)
	admin, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := kubeschema.DefaultNamespace
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fs := testutil.MountTmpfs(t)
	secret := filepath.Join(fs, "plan.txt")
	if err := os.WriteFile(secret, []byte("plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policyText := func(allowed string) map[string]string {
		return map[string]string{"run-test.yaml": fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: run-test}
spec:
  files: {paths: ["%s/**"]}
  rules:
    - {name: allowed, operations: [open], subjects: {executables: [%q]}, effect: allow}
    - {name: others, operations: [open], effect: deny}
`, fs, allowed)}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kubeschema.PolicyConfigMap, Namespace: ns}, Data: policyText("/usr/bin/head")}
	if cm, err = admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Setenv(kubeschema.EnvPodName, "drmfilter-agent-e2e")
	r := startRun(t, ctx, cancel, "--kubernetes", "--kubeconfig", srv.Kubeconfig, "--node-name", "node-e2e",
		"--policy", t.TempDir(), "--audit-file", "-", "--audit-stdout", "--metrics-address", "-",
		"--status-socket", filepath.Join(t.TempDir(), "status.sock"))
	out, errOut := &r.out, &r.errOut
	lease := func() kubeschema.NodeStatus {
		l, err := admin.CoordinationV1().Leases(ns).Get(context.Background(), kubeschema.NodeStatusName("node-e2e"), metav1.GetOptions{})
		if err != nil {
			return kubeschema.NodeStatus{}
		}
		st, _ := kubeschema.DecodeNodeStatus(l.Annotations[kubeschema.AnnotationNodeStatus])
		return st
	}
	waitLease := func(what string, cond func(kubeschema.NodeStatus) bool) kubeschema.NodeStatus {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if st := lease(); cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: lease %+v\n%s", what, lease(), errOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitLease("a ready agent", func(st kubeschema.NodeStatus) bool { return st.Ready && st.PolicyHash != "" })
	if first.PolicySource != kubeschema.SourceAPI || first.Pod != "drmfilter-agent-e2e" || first.PolicyGeneration != 1 {
		t.Fatalf("first status %+v", first)
	}
	cat := func() error { return catFile(secret) }
	if err := cat(); err == nil {
		t.Fatal("cat of the protected file succeeded")
	}
	cm.Data = policyText("/usr/bin/cat")
	if _, err := admin.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := waitLease("the updated policy", func(st kubeschema.NodeStatus) bool { return st.PolicyHash != first.PolicyHash && st.PolicyHash != "" })
	if second.PolicyGeneration != 2 || second.PolicyError != "" {
		t.Fatalf("after the update: %+v", second)
	}
	if err := cat(); err != nil {
		t.Fatalf("cat after the ConfigMap update: %v", err)
	}
	r.stop()
	if st := lease(); st.Ready || st.PolicyHash != second.PolicyHash {
		t.Errorf("after the agent stopped, the Lease says %+v; want not ready", st)
	}
	if !strings.Contains(out.String(), `"decision":"deny","mode":"enforce","policy":"run-test","rule":"others"`) {
		t.Errorf("no deny record on stdout:\n%s", out.String())
	}
}
