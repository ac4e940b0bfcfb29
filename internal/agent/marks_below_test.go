package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/mountinfo"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// TestWantedMarksBelowAGlobPrefix computes the marks of the shipped
// Kubernetes secrets policy for an agent in a pod, which sees the node's
// / at HostRoot: the kubelet's filesystem and each secret volume, but not
// a pod's other volumes, pseudo filesystems or the agent's own mounts.
func TestWantedMarksBelowAGlobPrefix(t *testing.T) {
	root := filepath.Join(t.TempDir(), "host")
	if err := os.MkdirAll(filepath.Join(root, "var/lib/kubelet/pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	pod := root + "/var/lib/kubelet/pods/0a1b2c3d/volumes"
	secret := pod + "/kubernetes.io~secret/api-token"
	ms := []mountinfo.Mount{
		{ID: 1, ParentID: 0, Major: 0, Minor: 40, Root: "/", MountPoint: "/", FSType: "overlay", Source: "overlay"},
		{ID: 2, ParentID: 1, Major: 8, Minor: 1, Root: "/", MountPoint: root, FSType: "ext4", Source: "/dev/sda1"},
		{ID: 3, ParentID: 2, Major: 8, Minor: 2, Root: "/", MountPoint: root + "/var/lib/kubelet", FSType: "ext4", Source: "/dev/sdb1"},
		{ID: 4, ParentID: 3, Major: 0, Minor: 50, Root: "/", MountPoint: secret, FSType: "tmpfs", Source: "tmpfs"},
		{ID: 5, ParentID: 3, Major: 0, Minor: 51, Root: "/", MountPoint: pod + "/kubernetes.io~empty-dir/cache", FSType: "tmpfs", Source: "tmpfs"},
		{ID: 6, ParentID: 3, Major: 0, Minor: 52, Root: "/", MountPoint: pod + "/kubernetes.io~projected/kube-api-access", FSType: "tmpfs", Source: "tmpfs"},
		{ID: 7, ParentID: 2, Major: 0, Minor: 5, Root: "/", MountPoint: root + "/proc", FSType: "proc", Source: "proc"},
		{ID: 8, ParentID: 1, Major: 0, Minor: 53, Root: "/", MountPoint: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/own", FSType: "tmpfs", Source: "tmpfs"},
	}
	set, err := policy.Load([]policy.Source{{Name: "secrets.yaml", Data: []byte(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: secrets}
spec:
  files: {paths: ["/var/lib/kubelet/pods/*/volumes/kubernetes.io~secret/**"]}
  rules:
    - {name: deny, operations: [open], effect: deny}
`)}}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := policy.Compile(set, policy.CompileOptions{})
	st := &policyState{m: m, mask: maskFor(m.Operations())}
	st.roots, st.anywhere = m.Roots()
	a := &Agent{cfg: config.Config{HostRoot: root}}
	a.mounts.Store(storage.NewMounts(root, ms))
	var got []string
	for mp := range a.wantedMarks(st) {
		got = append(got, mp)
	}
	slices.Sort(got)
	want := []string{root + "/var/lib/kubelet", secret}
	if !slices.Equal(got, want) {
		t.Errorf("marks %v, want %v", got, want)
	}
}
