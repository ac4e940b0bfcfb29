package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// fakeCRI serves the real CRI RuntimeService for one pod with one
// container, as containerd would on a Kubernetes node.
type fakeCRI struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	containerID, sandboxID string
}

const (
	podUID   = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
	podImage = "registry.example.com/payments/api:2.3"
)

func (f *fakeCRI) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if req.GetContainerId() != f.containerID {
		return nil, status.Errorf(codes.NotFound, "container %q not found", req.GetContainerId())
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id: f.containerID, Metadata: &runtimeapi.ContainerMetadata{Name: "api"},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		Image: &runtimeapi.ImageSpec{Image: podImage}, ImageRef: "registry.example.com/payments/api@sha256:" + strings.Repeat("e", 64),
		Labels: map[string]string{
			"io.kubernetes.container.name": "api", "io.kubernetes.pod.name": "api-0",
			"io.kubernetes.pod.namespace": "payments", "io.kubernetes.pod.uid": podUID,
			"io.kubernetes.sandbox.id": f.sandboxID,
		},
	}}, nil
}

func (f *fakeCRI) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if req.GetPodSandboxId() != f.sandboxID {
		return nil, status.Errorf(codes.NotFound, "sandbox %q not found", req.GetPodSandboxId())
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{
		Id:       f.sandboxID,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "api-0", Namespace: "payments", Uid: podUID},
		State:    runtimeapi.PodSandboxState_SANDBOX_READY,
		Labels:   map[string]string{"app": "payments-api", "tier": "backend"},
	}}, nil
}

func (f *fakeCRI) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{{
		Id: f.containerID, PodSandboxId: f.sandboxID, Metadata: &runtimeapi.ContainerMetadata{Name: "api"},
		State: runtimeapi.ContainerState_CONTAINER_RUNNING,
	}}}, nil
}

func (f *fakeCRI) ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: []*runtimeapi.PodSandbox{{
		Id: f.sandboxID, Metadata: &runtimeapi.PodSandboxMetadata{Name: "api-0", Namespace: "payments", Uid: podUID},
		State: runtimeapi.PodSandboxState_SANDBOX_READY,
	}}}, nil
}

func serveFakeCRI(t *testing.T, f *fakeCRI) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return sock
}

// testCgroup creates the cgroup at path (relative to the unified
// hierarchy: /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a
// pure v2 one), with its missing parents, and removes what it made when
// the test ends. Processes written into it show the path in
// /proc/PID/cgroup as a runtime's would.
func testCgroup(t *testing.T, path string) string {
	t.Helper()
	testutil.RequireRoot(t)
	base := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		base = "/sys/fs/cgroup"
	}
	var made []string
	dir := base
	for _, part := range strings.Split(path, "/") {
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			made = append(made, dir)
			continue
		}
		if !os.IsExist(err) {
			if testutil.InCI() {
				t.Fatalf("cannot create a cgroup: %v", err)
			}
			t.Skipf("cannot create a cgroup: %v", err)
		}
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i])
		}
	})
	return dir
}

// podCgroup makes a cgroup named as the kubelet's systemd driver names a
// containerd container of a BestEffort pod.
func podCgroup(t *testing.T, containerID string) string {
	t.Helper()
	podSlice := "kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice"
	return testCgroup(t, "kubepods.slice/kubepods-besteffort.slice/"+podSlice+"/cri-containerd-"+containerID+".scope")
}

// runIn runs a shell command line inside cgroup cg.
func runIn(t *testing.T, cg string, cmd string) (string, error) {
	t.Helper()
	return run(t, "/", "sh", "-c", "echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec "+cmd)
}

func TestPodSelectorWithRuntimeMetadata(t *testing.T) {
	id := strings.Repeat("c0ffee", 10) + "abcd"
	cg := podCgroup(t, id)
	sock := serveFakeCRI(t, &fakeCRI{containerID: id, sandboxID: strings.Repeat("5a", 32)})
	h := startAgent(t, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: payments-secrets}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - name: payments-api
      operations: [open]
      subjects:
        kubernetes:
          namespaces: [payments]
          podLabels: {matchLabels: {app: payments-api}, matchExpressions: [{key: tier, operator: In, values: [backend]}]}
        container: {images: [registry.example.com/payments/api]}
      effect: audit
    - name: everyone-else
      operations: [open]
      effect: deny
`, fs)
	}, func(c *config.Config) { c.CRI.Endpoints = []string{sock} })

	// The first open may be decided before the runtime has answered
	// (decisions never wait on it); the pod's opens are allowed as soon
	// as its metadata is known.
	waitFor(t, func() bool {
		_, err := runIn(t, cg, "cat "+h.path("secret/plan.txt"))
		return err == nil
	}, "the pod's open to be allowed by its labels")
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "a host process")
	h.stop()
	found := false
	for _, r := range h.audit.records(t) {
		if r.Decision == "audit" && r.Rule == "payments-api" {
			found = true
			if r.Pod != "payments/api-0" || r.ContainerID != id || r.Runtime != "containerd" || r.Reason != "" {
				t.Errorf("the pod's audit record: %+v", r)
			}
		}
		if r.Decision == "deny" && r.ContainerID == id && r.Reason == "" {
			t.Errorf("a deny of the pod before its metadata was known must say what was missing: %+v", r)
		}
	}
	if !found {
		t.Errorf("no audit record names the pod: %+v", h.audit.records(t))
	}
}

func TestUnknownContainerIsDecidedWithWhatIsKnown(t *testing.T) {
	id := strings.Repeat("beef", 16)
	cg := podCgroup(t, id)
	sock := serveFakeCRI(t, &fakeCRI{containerID: strings.Repeat("0", 64), sandboxID: "s"})
	h := startAgent(t, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-pod}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - {name: payments, operations: [open], subjects: {kubernetes: {namespaces: [payments]}}, effect: allow}
    - {name: others, operations: [open], effect: deny}
`, fs)
	}, func(c *config.Config) { c.CRI.Endpoints = []string{sock} })
	waitFor(t, func() bool {
		out, err := runIn(t, cg, "cat "+h.path("secret/plan.txt"))
		mustDeny(t, out, err, "a container the runtime does not know")
		for _, r := range h.audit.records(t) {
			if r.Decision == "deny" && r.ContainerID == id && r.Reason == "container unknown to the runtime" {
				return true
			}
		}
		return false
	}, "a deny record saying the runtime does not know the container")
}

// A pod's labels changed after it started (kubectl label) reach decisions
// through Options.PodLabels (the API server's watch in a cluster), while
// the runtime still reports the labels the pod was created with.
func TestPodLabelsFromTheAPIServerOverrideTheRuntimes(t *testing.T) {
	id := strings.Repeat("f00d", 16)
	cg := podCgroup(t, id)
	sock := serveFakeCRI(t, &fakeCRI{containerID: id, sandboxID: strings.Repeat("6b", 32)})
	var api atomic.Pointer[map[string]string] // nil: the API server has not seen the pod
	h := startAgent(t, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: backend-secrets}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - name: backend
      operations: [open]
      subjects:
        kubernetes:
          podLabels: {matchExpressions: [{key: tier, operator: In, values: [backend]}]}
      effect: allow
    - name: everyone-else
      operations: [open]
      effect: deny
`, fs)
	}, func(c *config.Config) { c.CRI.Endpoints = []string{sock} },
		func(o *Options) {
			o.PodLabels = func(uid string) (map[string]string, bool) {
				if l := api.Load(); l != nil && uid == podUID {
					return *l, true
				}
				return nil, false
			}
		})

	// Not seen by the API server yet: the runtime's labels (tier backend).
	waitFor(t, func() bool {
		_, err := runIn(t, cg, "cat "+h.path("secret/plan.txt"))
		return err == nil
	}, "the pod's open to be allowed by the runtime's labels")
	// Relabelled to tier=frontend: denied from the next open on.
	api.Store(&map[string]string{"app": "payments-api", "tier": "frontend"})
	out, err := runIn(t, cg, "cat "+h.path("secret/plan.txt"))
	mustDeny(t, out, err, "the relabelled pod")
	// Back to backend.
	api.Store(&map[string]string{"app": "payments-api", "tier": "backend"})
	out, err = runIn(t, cg, "cat "+h.path("secret/plan.txt"))
	mustAllow(t, out, err, "the pod relabelled back")
}
