package cri

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDiscover builds a fixture root the way hosts lay sockets out:
// /var/run is an absolute link to /run (so CRI-O's /var/run/crio path must
// be resolved inside the root, not on the test machine), cri-dockerd's
// socket is a link to containerd's (found once), k0s's is a regular file
// (not a runtime), and k3s's directory is a symbolic link loop.
func TestDiscover(t *testing.T) {
	root := t.TempDir()
	mkdir := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(target, p string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	listen := func(p string) {
		t.Helper()
		l, err := net.Listen("unix", filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
	}

	if got := Discover(root); len(got) != 0 {
		t.Errorf("Discover(empty root) = %v, want none", got)
	}

	mkdir("run/containerd")
	mkdir("run/crio")
	mkdir("run/k0s")
	mkdir("var")
	mkdir("var/snap/microk8s/common/run")
	symlink("/run", "var/run")
	listen("run/containerd/containerd.sock")
	listen("run/crio/crio.sock")
	listen("var/snap/microk8s/common/run/containerd.sock")
	if err := os.WriteFile(filepath.Join(root, "run/k0s/containerd.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	symlink("containerd/containerd.sock", "run/cri-dockerd.sock")
	symlink("/run/k3s", "run/k3s")

	want := []string{
		filepath.Join(root, "run/containerd/containerd.sock"),
		filepath.Join(root, "run/crio/crio.sock"),
		filepath.Join(root, "var/snap/microk8s/common/run/containerd.sock"),
	}
	if got := Discover(root); !slices.Equal(got, want) {
		t.Errorf("Discover:\n got %q\nwant %q", got, want)
	}
	if got := WellKnownSockets(); len(got) != 6 || got[1] != "/var/run/crio/crio.sock" {
		t.Errorf("WellKnownSockets = %q", got)
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{
		{"/a", "abs"},           // absolute: re-rooted
		{"a/b", "rel"},          // relative
		{"../../../../a", "up"}, // .. stops at root
	} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	for in, want := range map[string]string{
		"/abs/b": "/a/b",
		"/rel":   "/a/b",
		"/up/b":  "/a/b",
		"/a/./b": "/a/b",
	} {
		got, err := resolveIn(root, in)
		if err != nil || got != want {
			t.Errorf("resolveIn(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := resolveIn(root, "/a/none"); !os.IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
}
