package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hexID returns a 64-hex-digit ID, as the agent gets from cgroups.
func hexID(prefix string, n int) string {
	s := fmt.Sprintf("%s%x", prefix, n)
	return s + strings.Repeat("0", 64-len(s))
}

var (
	podWeb = fakePod{
		id: hexID("5b", 1), name: "web-7d9f", namespace: "payments", uid: "0f6f1c9e-3a59-4a0e-9d62-1f7b0f5f2a11",
		labels: map[string]string{
			"app": "web", "tier": "frontend",
			"io.kubernetes.pod.name": "web-7d9f", "io.kubernetes.pod.namespace": "payments",
			"io.kubernetes.pod.uid": "0f6f1c9e-3a59-4a0e-9d62-1f7b0f5f2a11",
		},
	}
	podDB = fakePod{
		id: hexID("5b", 2), name: "db-0", namespace: "payments", uid: "8c1f2e44-0000-4000-8000-000000000002",
		labels: map[string]string{"app": "db", "io.kubernetes.pod.name": "db-0"},
	}
	ctrNginx = fakeContainer{
		id: hexID("c0", 1), sandbox: podWeb.id, name: "nginx",
		image:    "docker.io/library/nginx:1.27",
		imageRef: "docker.io/library/nginx@sha256:" + strings.Repeat("ab", 32),
		imageID:  "sha256:" + strings.Repeat("cd", 32),
	}
	ctrSidecar = fakeContainer{
		id: hexID("c0", 2), sandbox: podWeb.id, name: "envoy",
		image: "docker.io/envoyproxy/envoy:v1.31", imageRef: "docker.io/envoyproxy/envoy@sha256:" + strings.Repeat("ef", 32),
	}
	ctrPostgres = fakeContainer{
		id: hexID("c0", 3), sandbox: podDB.id, name: "postgres",
		image: "docker.io/library/postgres:17", imageRef: "docker.io/library/postgres@sha256:" + strings.Repeat("01", 32),
	}
	unknownID = hexID("dead", 1)
)

// newFixture serves the standard table and returns a client of it. The
// client's options are adjusted by opt.
func newFixture(t *testing.T, opt func(*Options)) (*fakeRuntime, *Client, string) {
	t.Helper()
	f := newFakeRuntime([]fakePod{podWeb, podDB}, []fakeContainer{ctrNginx, ctrSidecar, ctrPostgres})
	sock := socketPath(t, "cri.sock")
	serve(t, sock, f)
	o := Options{Endpoints: []string{"unix://" + sock}, SweepInterval: -1}
	if opt != nil {
		opt(&o)
	}
	c := New(o)
	t.Cleanup(func() { _ = c.Close() })
	return f, c, sock
}

func checkNginx(t *testing.T, info Info, sock string) {
	t.Helper()
	want := Info{
		ContainerID:   ctrNginx.id,
		ContainerName: "nginx",
		Image:         ctrNginx.image,
		ImageRef:      ctrNginx.imageRef,
		ImageID:       ctrNginx.imageID,
		SandboxID:     podWeb.id,
		PodName:       "web-7d9f",
		PodNamespace:  "payments",
		PodUID:        podWeb.uid,
		Endpoint:      sock,
	}
	got := info
	got.PodLabels, got.Missing, got.Err = nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("info:\n got %+v\nwant %+v", got, want)
	}
	if !maps.Equal(info.PodLabels, podWeb.labels) {
		t.Errorf("pod labels = %v, want exactly the sandbox's %v", info.PodLabels, podWeb.labels)
	}
	if len(info.Missing) != 0 || info.Err != nil {
		t.Errorf("missing = %v, err = %v; want none", info.Missing, info.Err)
	}
	if d := info.ImageDigest(); d != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("ImageDigest = %q", d)
	}
}

func TestLookupPodMetadata(t *testing.T) {
	_, c, sock := newFixture(t, nil)
	ctx := t.Context()

	info, err := c.Lookup(ctx, ctrNginx.id)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	checkNginx(t, info, sock)

	info, err = c.Lookup(ctx, ctrPostgres.id)
	if err != nil {
		t.Fatalf("Lookup postgres: %v", err)
	}
	if info.PodName != "db-0" || info.ContainerName != "postgres" || !maps.Equal(info.PodLabels, podDB.labels) {
		t.Errorf("postgres: %+v", info)
	}

	// The pause container's cgroup carries the sandbox ID.
	info, err = c.Lookup(ctx, podWeb.id)
	if err != nil {
		t.Fatalf("Lookup sandbox: %v", err)
	}
	if !info.Sandbox || info.PodName != "web-7d9f" || info.PodNamespace != "payments" || info.SandboxID != podWeb.id {
		t.Errorf("sandbox: %+v", info)
	}
	if want := []string{FieldContainerName, FieldImage, FieldImageRef}; !slices.Equal(info.Missing, want) {
		t.Errorf("sandbox missing = %v, want %v", info.Missing, want)
	}

	// Lookup fills the cache.
	if got, st := c.Cached(ctrNginx.id); st != Known || got.ContainerName != "nginx" {
		t.Errorf("Cached after Lookup: %v %+v", st, got)
	}
}

// longTimeout keeps a call held by blockStatus from timing out on a slow
// CI machine: the tests release it themselves.
func longTimeout(o *Options) { o.Timeout = time.Minute }

func TestCachedPendingThenKnown(t *testing.T) {
	f, c, sock := newFixture(t, longTimeout)
	entered, release := f.blockStatus()
	defer release()

	info, st := c.Cached(ctrNginx.id)
	if st != Pending || info.ContainerID != ctrNginx.id {
		t.Fatalf("first Cached = %v %+v, want Pending", st, info)
	}
	<-entered // the lookup is at the runtime, held there
	if _, st := c.Cached(ctrNginx.id); st != Pending {
		t.Fatalf("Cached while the runtime holds the call = %v, want Pending", st)
	}
	release()
	checkNginx(t, waitFor(t, c, ctrNginx.id, Known), sock)
}

func TestSlowEndpointNeverBlocks(t *testing.T) {
	f, c, _ := newFixture(t, func(o *Options) {
		o.Timeout = 100 * time.Millisecond
		o.RetryInterval = time.Hour
	})
	entered, release := f.blockStatus() // never released before the test ends
	defer release()

	if _, st := c.Cached(ctrNginx.id); st != Pending {
		t.Fatalf("Cached = %v, want Pending", st)
	}
	<-entered
	// The runtime holds the call; Cached keeps answering, for this ID and
	// for others (which queue behind the bounded workers).
	for i := range 100 {
		id := hexID("e0", i)
		if _, st := c.Cached(id); st != Pending {
			t.Fatalf("Cached(other %d) = %v, want Pending", i, st)
		}
	}
	info := waitFor(t, c, ctrNginx.id, Unavailable)
	if !errors.Is(info.Err, ErrUnavailable) || !errors.Is(info.Err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrUnavailable and DeadlineExceeded", info.Err)
	}
	var ee *EndpointError
	if !errors.As(info.Err, &ee) || ee.Op != "ContainerStatus" || !ee.Timeout() {
		t.Errorf("err = %#v, want a timed-out ContainerStatus EndpointError", info.Err)
	}
	// The Unavailable answer is kept until RetryInterval: no new call.
	n := f.containerStatusCalls.Load()
	for range 10 {
		if _, st := c.Cached(ctrNginx.id); st != Unavailable {
			t.Fatalf("Cached = %v, want Unavailable kept", st)
		}
	}
	if got := f.containerStatusCalls.Load(); got != n {
		t.Errorf("ContainerStatus calls went from %d to %d while Unavailable was cached", n, got)
	}
}

func TestAbsentSocketThenRecovery(t *testing.T) {
	sock := socketPath(t, "late.sock")
	c := New(Options{Endpoints: []string{sock}, RetryInterval: 20 * time.Millisecond, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })

	if _, st := c.Cached(ctrNginx.id); st != Pending {
		t.Fatalf("Cached = %v, want Pending", st)
	}
	info := waitFor(t, c, ctrNginx.id, Unavailable)
	if !errors.Is(info.Err, ErrUnavailable) || !errors.Is(info.Err, fs.ErrNotExist) {
		t.Errorf("err = %v, want ErrUnavailable wrapping the dial error (no such file)", info.Err)
	}
	if !strings.Contains(info.Err.Error(), sock) {
		t.Errorf("err %q does not name the socket", info.Err)
	}
	if _, err := c.Lookup(t.Context(), ctrNginx.id); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lookup err = %v, want ErrUnavailable", err)
	}

	// The runtime starts.
	f := newFakeRuntime([]fakePod{podWeb}, []fakeContainer{ctrNginx})
	serve(t, sock, f)
	checkNginx(t, waitFor(t, c, ctrNginx.id, Known), sock)
}

func TestRuntimeRestart(t *testing.T) {
	f := newFakeRuntime([]fakePod{podWeb, podDB}, []fakeContainer{ctrNginx, ctrPostgres})
	sock := socketPath(t, "cri.sock")
	stop := serve(t, sock, f)
	c := New(Options{Endpoints: []string{sock}, RetryInterval: 20 * time.Millisecond, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Lookup(t.Context(), ctrNginx.id); err != nil {
		t.Fatal(err)
	}
	// The runtime stops: the connection breaks and lookups fail.
	stop()
	if _, err := c.Lookup(t.Context(), ctrPostgres.id); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Lookup with the runtime down: %v, want ErrUnavailable", err)
	}
	// It comes back on the same socket; the cached answer survived.
	_ = os.Remove(sock)
	serve(t, sock, f)
	waitFor(t, c, ctrPostgres.id, Known)
	if _, st := c.Cached(ctrNginx.id); st != Known {
		t.Errorf("Cached(nginx) = %v, want Known", st)
	}
}

func TestUnknownContainerMissing(t *testing.T) {
	_, c, _ := newFixture(t, nil)
	if _, st := c.Cached(unknownID); st != Pending {
		t.Fatalf("Cached = %v, want Pending", st)
	}
	info := waitFor(t, c, unknownID, Missing)
	if !errors.Is(info.Err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", info.Err)
	}
	if _, err := c.Lookup(t.Context(), unknownID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup err = %v, want ErrNotFound", err)
	}
}

func TestDedupeInFlight(t *testing.T) {
	f, c, _ := newFixture(t, longTimeout)
	entered, release := f.blockStatus()
	defer release()

	start := make(chan struct{})
	var wg sync.WaitGroup
	states := make([]State, 50)
	for i := range states {
		wg.Go(func() {
			<-start
			_, states[i] = c.Cached(ctrNginx.id)
		})
	}
	close(start)
	wg.Wait() // all 50 returned while the one lookup is held at the runtime
	<-entered
	for i, st := range states {
		if st != Pending {
			t.Errorf("caller %d: %v, want Pending", i, st)
		}
	}
	release()
	waitFor(t, c, ctrNginx.id, Known)
	if n := f.containerStatusCalls.Load(); n != 1 {
		t.Errorf("ContainerStatus calls = %d, want 1", n)
	}
}

func TestCacheBoundAndForget(t *testing.T) {
	const size = 3
	pods := []fakePod{podWeb}
	var ctrs []fakeContainer
	for i := range 8 {
		ctrs = append(ctrs, fakeContainer{id: hexID("a0", i), sandbox: podWeb.id, name: fmt.Sprint("c", i), image: "busybox"})
	}
	f := newFakeRuntime(pods, ctrs)
	sock := socketPath(t, "cri.sock")
	serve(t, sock, f)
	c := New(Options{Endpoints: []string{sock}, CacheSize: size, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })

	for _, ctr := range ctrs {
		if _, err := c.Lookup(t.Context(), ctr.id); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > size {
			t.Fatalf("Len = %d > CacheSize %d", n, size)
		}
	}
	if n := c.Len(); n != size {
		t.Errorf("Len = %d, want %d", n, size)
	}
	last := ctrs[len(ctrs)-1].id
	if _, st := c.Cached(last); st != Known {
		t.Fatalf("latest entry: %v, want Known", st)
	}

	calls := f.containerStatusCalls.Load()
	c.Forget(last)
	if n := c.Len(); n != size-1 {
		t.Errorf("Len after Forget = %d, want %d", n, size-1)
	}
	if _, st := c.Cached(last); st != Pending {
		t.Errorf("Cached after Forget = %v, want Pending", st)
	}
	waitFor(t, c, last, Known)
	if got := f.containerStatusCalls.Load(); got != calls+1 {
		t.Errorf("ContainerStatus calls after Forget: %d, want %d", got, calls+1)
	}
	c.Forget(unknownID) // not cached: no effect
}

func TestCacheFullOfLookupsIsBusy(t *testing.T) {
	f, c, _ := newFixture(t, func(o *Options) { longTimeout(o); o.CacheSize = 2; o.MaxConcurrent = 1 })
	_, release := f.blockStatus()
	defer release()
	for _, id := range []string{ctrNginx.id, ctrSidecar.id} {
		if _, st := c.Cached(id); st != Pending {
			t.Fatalf("Cached = %v, want Pending", st)
		}
	}
	info, st := c.Cached(ctrPostgres.id)
	if st != Unavailable || !errors.Is(info.Err, ErrBusy) {
		t.Fatalf("Cached with the cache full of lookups = %v %v, want Unavailable ErrBusy", st, info.Err)
	}
	release()
	waitFor(t, c, ctrNginx.id, Known)
	waitFor(t, c, ctrSidecar.id, Known)
	waitFor(t, c, ctrPostgres.id, Known) // a slot is free again
}

func TestTTLRefresh(t *testing.T) {
	f, c, _ := newFixture(t, func(o *Options) { o.TTL = 20 * time.Millisecond })
	if _, err := c.Lookup(t.Context(), ctrNginx.id); err != nil {
		t.Fatal(err)
	}
	relabeled := map[string]string{"app": "web", "tier": "backend"}
	f.setPodLabels(podWeb.id, relabeled)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, st := c.Cached(ctrNginx.id)
		if st != Known { // stale answers are served as Known while refreshed
			t.Fatalf("Cached = %v, want Known throughout", st)
		}
		if maps.Equal(info.PodLabels, relabeled) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("labels never refreshed: %v", info.PodLabels)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A refresh that finds the container gone makes it Missing.
	f.removeContainer(ctrNginx.id)
	waitFor(t, c, ctrNginx.id, Missing)
}

func TestRemovedContainerIsDropped(t *testing.T) {
	t.Run("Sweep", func(t *testing.T) {
		f, c, _ := newFixture(t, nil)
		for _, id := range []string{ctrNginx.id, ctrPostgres.id, podDB.id} {
			if _, err := c.Lookup(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
		f.removeContainer(ctrNginx.id)
		if err := c.Sweep(t.Context()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if n := c.Len(); n != 2 {
			t.Errorf("Len after Sweep = %d, want 2 (postgres and its sandbox kept)", n)
		}
		if _, st := c.Cached(ctrNginx.id); st != Pending {
			t.Errorf("Cached(removed) = %v, want Pending (a new lookup)", st)
		}
		waitFor(t, c, ctrNginx.id, Missing)
		if _, st := c.Cached(ctrPostgres.id); st != Known {
			t.Errorf("Cached(postgres) = %v, want Known", st)
		}
	})
	t.Run("automatic", func(t *testing.T) {
		f, c, _ := newFixture(t, func(o *Options) { o.SweepInterval = 10 * time.Millisecond; o.TTL = time.Hour })
		if _, err := c.Lookup(t.Context(), ctrNginx.id); err != nil {
			t.Fatal(err)
		}
		f.removeContainer(ctrNginx.id)
		waitFor(t, c, ctrNginx.id, Missing)
	})
	t.Run("runtime down keeps entries", func(t *testing.T) {
		c := New(Options{Endpoints: []string{socketPath(t, "none.sock")}, SweepInterval: -1})
		t.Cleanup(func() { _ = c.Close() })
		c.mu.Lock()
		e := &entry{id: ctrNginx.id, state: Known, info: Info{ContainerID: ctrNginx.id, Endpoint: c.fixed[0].path}, expires: time.Now().Add(time.Hour)}
		c.insert(e)
		c.mu.Unlock()
		if err := c.Sweep(t.Context()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Sweep err = %v, want the dial error", err)
		}
		if _, st := c.Cached(ctrNginx.id); st != Known {
			t.Errorf("Cached = %v, want Known kept", st)
		}
	})
}

func TestPartialPodInfo(t *testing.T) {
	f, c, _ := newFixture(t, nil)
	f.mu.Lock()
	f.sandboxErr = status.Error(codes.Internal, "sandbox store broken")
	f.mu.Unlock()
	info, err := c.Lookup(t.Context(), ctrNginx.id)
	if err != nil {
		t.Fatal(err)
	}
	// Pod identity from the kubelet's container labels; labels missing.
	if info.PodName != "web-7d9f" || info.PodNamespace != "payments" || info.PodUID != podWeb.uid || info.ContainerName != "nginx" {
		t.Errorf("info = %+v", info)
	}
	if want := []string{FieldPodLabels}; !slices.Equal(info.Missing, want) || info.PodLabels != nil {
		t.Errorf("missing = %v labels = %v, want %v and nil", info.Missing, info.PodLabels, want)
	}
	var ee *EndpointError
	if !errors.As(info.Err, &ee) || ee.Op != "PodSandboxStatus" {
		t.Errorf("err = %v, want the PodSandboxStatus failure", info.Err)
	}
}

func TestSeveralEndpoints(t *testing.T) {
	// A containerd without the CRI plugin (Docker's): the service is not
	// registered, so every call is Unimplemented.
	noCRI := socketPath(t, "nocri.sock")
	l, err := net.Listen("unix", noCRI)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	other := socketPath(t, "other.sock")
	serve(t, other, newFakeRuntime([]fakePod{podDB}, []fakeContainer{ctrPostgres}))

	f, _, sock := newFixture(t, nil)
	_ = f
	c := New(Options{Endpoints: []string{noCRI, other, sock}, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })

	info, err := c.Lookup(t.Context(), ctrNginx.id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Endpoint != sock {
		t.Errorf("answered by %s, want %s", info.Endpoint, sock)
	}
	if _, err := c.Lookup(t.Context(), unknownID); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown everywhere: %v, want ErrNotFound (Unimplemented counts as not found)", err)
	}
	if err := c.Sweep(t.Context()); err != nil {
		t.Errorf("Sweep: %v", err)
	}

	// An endpoint that is down makes an unknown ID Unavailable, not
	// Missing: it might be that runtime's.
	c2 := New(Options{Endpoints: []string{sock, socketPath(t, "down.sock")}, SweepInterval: -1})
	t.Cleanup(func() { _ = c2.Close() })
	if _, err := c2.Lookup(t.Context(), unknownID); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with one endpoint down: %v, want ErrUnavailable", err)
	}
	if _, err := c2.Lookup(t.Context(), ctrNginx.id); err != nil {
		t.Errorf("known at the first endpoint: %v", err)
	}
}

func TestBadEndpointsAndClose(t *testing.T) {
	c := New(Options{Endpoints: []string{"tcp://127.0.0.1:1", "relative.sock"}, SweepInterval: -1})
	_, err := c.Lookup(t.Context(), ctrNginx.id)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "only unix sockets") || !strings.Contains(err.Error(), "not an absolute") {
		t.Errorf("Lookup = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if info, st := c.Cached(unknownID); st != Unavailable || !errors.Is(info.Err, ErrClosed) {
		t.Errorf("Cached after Close = %v %v", st, info.Err)
	}
	if _, err := c.Lookup(t.Context(), unknownID); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close = %v", err)
	}
	// Answers cached before Close are still served.
	if _, st := c.Cached(ctrNginx.id); st != Unavailable {
		t.Errorf("Cached(kept) = %v, want the cached Unavailable", st)
	}
}

func TestNoEndpointDiscovered(t *testing.T) {
	c := New(Options{Root: t.TempDir(), SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Lookup(t.Context(), ctrNginx.id); !errors.Is(err, ErrNoEndpoints) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lookup = %v, want ErrUnavailable and ErrNoEndpoints", err)
	}
}

func TestDiscoveredEndpoint(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "run/containerd/containerd.sock")
	serve(t, sock, newFakeRuntime([]fakePod{podWeb}, []fakeContainer{ctrNginx}))
	c := New(Options{Root: root, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })
	info, err := c.Lookup(t.Context(), ctrNginx.id)
	if err != nil {
		t.Fatal(err)
	}
	checkNginx(t, info, sock)
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{Known: "known", Pending: "pending", Missing: "missing", Unavailable: "unavailable", 0: "invalid"} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", st, got, want)
		}
	}
}

func TestCachedHitDoesNotAllocate(t *testing.T) {
	_, c, _ := newFixture(t, nil)
	if _, err := c.Lookup(t.Context(), ctrNginx.id); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Cached(ctrNginx.id) }); n != 0 {
		t.Errorf("Cached hit allocates %v times", n)
	}
}

func BenchmarkCached(b *testing.B) {
	f := newFakeRuntime([]fakePod{podWeb}, []fakeContainer{ctrNginx})
	sock := socketPath(b, "cri.sock")
	serve(b, sock, f)
	c := New(Options{Endpoints: []string{sock}})
	b.Cleanup(func() { _ = c.Close() })
	if _, err := c.Lookup(b.Context(), ctrNginx.id); err != nil {
		b.Fatal(err)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, st := c.Cached(ctrNginx.id); st != Known {
				b.Fatal(st)
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, st := c.Cached(ctrNginx.id); st != Known {
					b.Fatal(st)
				}
			}
		})
	})
}

// TestErrorText shows what an audit record or a log would carry.
func TestErrorText(t *testing.T) {
	sock := socketPath(t, "none.sock")
	c := New(Options{Endpoints: []string{sock}, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })
	_, err := c.Lookup(t.Context(), unknownID)
	want := "cri: lookup " + unknownID + ": cri: no container runtime answered: cri: ContainerStatus on " + sock +
		": dial unix " + sock + ": connect: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("error text:\n got %v\nwant %s", err, want)
	}
}

// TestCloseStopsGoroutines checks that Close leaves no background
// lookup, sweep or connection goroutine behind, even with a call held at
// the runtime.
func TestCloseStopsGoroutines(t *testing.T) {
	f := newFakeRuntime([]fakePod{podWeb}, []fakeContainer{ctrNginx})
	sock := socketPath(t, "cri.sock")
	stop := serve(t, sock, f)
	entered, release := f.blockStatus()
	defer release()
	before := runtime.NumGoroutine()

	c := New(Options{Endpoints: []string{sock}, Timeout: time.Minute, SweepInterval: time.Nanosecond})
	for i := range 10 { // lookups held at the runtime, and queued ones
		c.Cached(hexID("f0", i))
	}
	<-entered
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	stop()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEvictionKeepsRecentlyHit checks the second chance: of the entries
// older than the last insert, one hit since is kept over one not hit.
func TestEvictionKeepsRecentlyHit(t *testing.T) {
	var ctrs []fakeContainer
	for i := range 5 {
		ctrs = append(ctrs, fakeContainer{id: hexID("b0", i), sandbox: podWeb.id, name: fmt.Sprint("c", i), image: "busybox"})
	}
	sock := socketPath(t, "cri.sock")
	serve(t, sock, newFakeRuntime([]fakePod{podWeb}, ctrs))
	c := New(Options{Endpoints: []string{sock}, CacheSize: 3, SweepInterval: -1})
	t.Cleanup(func() { _ = c.Close() })
	lookup := func(i int) {
		t.Helper()
		if _, err := c.Lookup(t.Context(), ctrs[i].id); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 { // the fourth evicts one of the first three
		lookup(i)
	}
	if _, st := c.Cached(ctrs[1].id); st != Known {
		t.Fatalf("entry 1 = %v, want Known", st)
	}
	lookup(4) // evicts entry 2, not the recently hit entry 1
	c.mu.RLock()
	_, has1 := c.entries[ctrs[1].id]
	_, has2 := c.entries[ctrs[2].id]
	c.mu.RUnlock()
	if !has1 || has2 {
		t.Errorf("after eviction: entry 1 cached %v (want true), entry 2 cached %v (want false)", has1, has2)
	}
}
