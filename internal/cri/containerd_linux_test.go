package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// TestRealContainerd runs a pod in a real containerd (Debian's package:
// containerd, runc, plus busybox-static for the image) started by the test
// on its own socket, root and state directories, and checks what the
// Client says about it against what the test asked the CRI to create. It
// needs root and those binaries; without them it skips, saying which,
// except under CI=true, where it fails (.ci/run installs them).
func TestRealContainerd(t *testing.T) {
	testutil.RequireRoot(t)
	bins := map[string]string{}
	for _, b := range []string{"containerd", "ctr", "runc", "busybox"} {
		p, err := exec.LookPath(b)
		if err != nil {
			msg := fmt.Sprintf("%s not installed (Debian: apt-get install containerd busybox-static)", b)
			if testutil.InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		bins[b] = p
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	startContainerd(t, bins["containerd"], dir, sock)
	const image = "localhost/drmfilter-test:1"
	manifestDigest, imageID := importImage(t, bins["ctr"], bins["busybox"], dir, sock, image)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c := New(Options{Endpoints: []string{sock}, SweepInterval: -1, Timeout: 30 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	rt, err := c.fixed[0].client(time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Before any pod: the real runtime's answer for an unknown ID.
	if _, err := c.Lookup(ctx, unknownID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown ID: %v, want ErrNotFound", err)
	}

	podLabels := map[string]string{"app": "web", "tier": "frontend"}
	hostNet := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
	sbConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web-0", Namespace: "payments", Uid: "6b1f0b6e-0000-4000-8000-00000000000a"},
		Labels:       podLabels,
		LogDirectory: filepath.Join(dir, "logs"),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: hostNet},
		},
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbConfig})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	sbID := sb.GetPodSandboxId()
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sbID})
		_, _ = rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sbID})
	})
	cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sbID,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  []string{"/bin/busybox", "sleep", "3600"},
			LogPath:  "app.log",
			Labels: map[string]string{ // as the kubelet sets them
				labelPodName: "web-0", labelPodNamespace: "payments", labelPodUID: sbConfig.Metadata.Uid, labelContainerName: "app",
			},
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: hostNet},
			},
		},
		SandboxConfig: sbConfig,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	ctrID := cr.GetContainerId()
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}

	if _, st := c.Cached(ctrID); st != Pending {
		t.Errorf("Cached = %v, want Pending", st)
	}
	info := waitFor(t, c, ctrID, Known)
	t.Logf("containerd %s answered: %+v", sock, info)
	if info.ContainerName != "app" || info.PodName != "web-0" || info.PodNamespace != "payments" ||
		info.PodUID != sbConfig.Metadata.Uid || info.SandboxID != sbID || info.Image != image ||
		len(info.Missing) != 0 || info.Err != nil {
		t.Errorf("container info = %+v", info)
	}
	// An image with no repository digest (imported, not pulled) has its
	// image ID as ImageRef (containerd 1.6); a pulled one, name@digest.
	if info.ImageRef != imageID && info.ImageDigest() != manifestDigest {
		t.Errorf("ImageRef = %q, want the image ID %s or a reference to %s", info.ImageRef, imageID, manifestDigest)
	}
	for k, v := range podLabels {
		if info.PodLabels[k] != v {
			t.Errorf("pod label %s = %q, want %q (labels %v)", k, info.PodLabels[k], v, info.PodLabels)
		}
	}

	// The pause process's cgroup names the sandbox ID.
	sbInfo, err := c.Lookup(ctx, sbID)
	if err != nil || !sbInfo.Sandbox || sbInfo.PodName != "web-0" {
		t.Errorf("sandbox lookup = %+v, %v", sbInfo, err)
	}

	// The container goes away: a sweep drops it and the runtime says
	// NotFound.
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if err := c.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if _, st := c.Cached(ctrID); st == Known {
		t.Errorf("removed container still Known after Sweep")
	}
	if _, err := c.Lookup(ctx, ctrID); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed container: %v, want ErrNotFound", err)
	}
}

// startContainerd runs containerd with everything under dir, until the
// test ends.
func startContainerd(t *testing.T, bin, dir, sock string) {
	t.Helper()
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/drmfilter-test:1"
  # Sandboxed CI VMs refuse a lower oom_score_adj than containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc",
		filepath.Join(dir, "runc"), filepath.Join(dir, "cni-bin"), filepath.Join(dir, "cni-conf"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// containerd 1.6 puts shim sockets in /run/containerd/s whatever its
	// state directory; remove what it leaves there if it made the
	// directory (os.Remove leaves a non-empty one alone).
	if _, err := os.Stat("/run/containerd"); errors.Is(err, os.ErrNotExist) {
		t.Cleanup(func() {
			_ = os.Remove("/run/containerd/s")
			_ = os.Remove("/run/containerd")
		})
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Dies with the test binary even when it is killed before cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode().Type() == os.ModeSocket {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd socket %s never appeared; log:\n%s", sock, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// importImage builds a one-layer image holding busybox, in the format
// "docker save" writes, imports it into containerd's k8s.io namespace
// (where the CRI looks) and returns its manifest digest and image ID (the
// config's digest).
func importImage(t *testing.T, ctr, busybox, dir, sock, name string) (manifestDigest, imageID string) {
	t.Helper()
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))},
	} {
		if err := lw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := lw.Write(bb); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/bin/busybox", "sleep", "3600"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(sum[:])}},
	})
	if err != nil {
		t.Fatal(err)
	}
	csum := sha256.Sum256(config)
	cname := hex.EncodeToString(csum[:]) + ".json"
	imageID = "sha256:" + hex.EncodeToString(csum[:])
	manifest, err := json.Marshal([]map[string]any{{"Config": cname, "RepoTags": []string{name}, "Layers": []string{"layer/layer.tar"}}})
	if err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	iw := tar.NewWriter(&img)
	for _, f := range []struct {
		name string
		data []byte
	}{{cname, config}, {"layer/layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		if err := iw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := iw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := iw.Close(); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(tarPath, img.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "import", tarPath).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	out, err := exec.Command(ctr, "-a", sock, "-n", "k8s.io", "images", "ls", "name=="+name).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "sha256:") {
			return f, imageID
		}
	}
	t.Fatalf("no digest for %s in:\n%s", name, out)
	return "", ""
}
