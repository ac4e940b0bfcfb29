package cri

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakePod and fakeContainer are the table the fake runtime serves.
type fakePod struct {
	id, name, namespace, uid string
	labels                   map[string]string
}

type fakeContainer struct {
	id, sandbox, name, image, imageRef, imageID string
}

// fakeRuntime serves the real CRI RuntimeService from a table. Methods it
// does not implement answer Unimplemented.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	mu         sync.Mutex
	pods       map[string]fakePod
	containers map[string]fakeContainer
	// block, when set, holds every ContainerStatus until it is closed or
	// the call's context ends. entered receives once per blocked call.
	block   chan struct{}
	entered chan struct{}
	// sandboxErr, when set, fails PodSandboxStatus with it.
	sandboxErr error

	containerStatusCalls atomic.Int64
}

func newFakeRuntime(pods []fakePod, ctrs []fakeContainer) *fakeRuntime {
	f := &fakeRuntime{pods: map[string]fakePod{}, containers: map[string]fakeContainer{}}
	for _, p := range pods {
		f.pods[p.id] = p
	}
	for _, c := range ctrs {
		f.containers[c.id] = c
	}
	return f
}

func (f *fakeRuntime) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	f.containerStatusCalls.Add(1)
	f.mu.Lock()
	block, entered := f.block, f.entered
	f.mu.Unlock()
	if block != nil {
		if entered != nil {
			select {
			case entered <- struct{}{}:
			default:
			}
		}
		select {
		case <-block:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", req.GetContainerId())
	}
	pod := f.pods[c.sandbox]
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id:       c.id,
		Metadata: &runtimeapi.ContainerMetadata{Name: c.name},
		State:    runtimeapi.ContainerState_CONTAINER_RUNNING,
		Image:    &runtimeapi.ImageSpec{Image: c.image},
		ImageRef: c.imageRef,
		ImageId:  c.imageID,
		// What the kubelet puts on every container.
		Labels: map[string]string{
			labelContainerName: c.name,
			labelPodName:       pod.name,
			labelPodNamespace:  pod.namespace,
			labelPodUID:        pod.uid,
		},
	}}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sandboxErr != nil {
		return nil, f.sandboxErr
	}
	p, ok := f.pods[req.GetPodSandboxId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find sandbox %q: not found", req.GetPodSandboxId())
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{
		Id:       p.id,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: p.name, Namespace: p.namespace, Uid: p.uid},
		State:    runtimeapi.PodSandboxState_SANDBOX_READY,
		Labels:   p.labels,
	}}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if id := req.GetFilter().GetId(); id != "" && id != c.id {
			continue
		}
		out = append(out, &runtimeapi.Container{
			Id:           c.id,
			PodSandboxId: c.sandbox,
			Metadata:     &runtimeapi.ContainerMetadata{Name: c.name},
			Image:        &runtimeapi.ImageSpec{Image: c.image},
			ImageRef:     c.imageRef,
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, p := range f.pods {
		if id := req.GetFilter().GetId(); id != "" && id != p.id {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id:       p.id,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: p.name, Namespace: p.namespace, Uid: p.uid},
			Labels:   p.labels,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// removeContainer deletes a container from the table, as the runtime does
// when the kubelet garbage-collects it.
func (f *fakeRuntime) removeContainer(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

func (f *fakeRuntime) setPodLabels(id string, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pods[id]
	p.labels = labels
	f.pods[id] = p
}

// blockStatus makes ContainerStatus wait until the returned func is
// called (or the call's deadline passes); entered receives when a call
// starts waiting.
func (f *fakeRuntime) blockStatus() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = make(chan struct{})
	f.entered = make(chan struct{}, 1)
	var once sync.Once
	b := f.block
	return f.entered, func() { once.Do(func() { close(b) }) }
}

// socketPath returns a path for a Unix socket in a fresh test directory,
// failing when it would exceed the sun_path limit.
func socketPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if len(p) >= 108 {
		t.Fatalf("socket path %q too long for sun_path (108 bytes); use a shorter TMPDIR", p)
	}
	return p
}

// serve serves f on a Unix socket at path until the test ends, and
// returns a func that stops it early.
func serve(t testing.TB, path string, f *fakeRuntime) (stop func()) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns when stopped
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Stop()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls Cached until it reports want, for at most 10 s (a bound
// against hangs, not a speed assertion).
func waitFor(t testing.TB, c *Client, id string, want State) Info {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, st := c.Cached(id)
		if st == want {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("Cached(%.12s): state %v (err %v), want %v", id, st, info.Err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
