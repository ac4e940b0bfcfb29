package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the kubelet puts on every container it creates
// (kubernetes pkg/kubelet/types/labels.go); used when PodSandboxStatus
// cannot be had.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// maxMsgSize is the largest response accepted: ListContainers on a busy
// node exceeds gRPC's 4 MiB default (the kubelet allows 16 MiB too).
const maxMsgSize = 16 << 20

// endpoint is one runtime socket and its lazily made gRPC connection.
type endpoint struct {
	path string
	// bad is set when the configured endpoint cannot be used at all (a
	// scheme other than unix).
	bad error

	mu     sync.Mutex
	closed bool // by Client.Close: no new connection
	conn   *grpc.ClientConn
	rt     runtimeapi.RuntimeServiceClient

	// lastDial is the error of the latest failed dial, nil after a
	// successful one; gRPC reports it only as text in a status error.
	lastDial atomic.Pointer[error]
}

// newEndpoint parses a configured endpoint: "unix:///path" or "/path".
func newEndpoint(s string) *endpoint {
	p, ok := strings.CutPrefix(s, "unix://")
	if !ok && strings.Contains(s, "://") {
		return &endpoint{path: s, bad: fmt.Errorf("unsupported endpoint %q: only unix sockets", s)}
	}
	if !strings.HasPrefix(p, "/") {
		return &endpoint{path: s, bad: fmt.Errorf("endpoint %q: not an absolute socket path", s)}
	}
	return &endpoint{path: p}
}

func (ep *endpoint) dial(ctx context.Context, _ string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", ep.path)
	if err != nil {
		ep.lastDial.Store(&err)
		return nil, err
	}
	ep.lastDial.Store(nil)
	return c, nil
}

// client returns the endpoint's RuntimeService client, making the gRPC
// connection on first use. gRPC reconnects by itself, with the backoff set
// here; a connection in transient failure is told to retry at once, so a
// runtime that (re)appears is found by the next lookup.
func (ep *endpoint) client(timeout time.Duration) (runtimeapi.RuntimeServiceClient, error) {
	if ep.bad != nil {
		return nil, ep.bad
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return nil, ErrClosed
	}
	if ep.conn != nil {
		if ep.conn.GetState() == connectivity.TransientFailure {
			ep.conn.ResetConnectBackoff()
		}
		return ep.rt, nil
	}
	conn, err := grpc.NewClient("passthrough:///"+ep.path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(ep.dial),
		grpc.WithAuthority("localhost"),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   5 * time.Second,
			},
			MinConnectTimeout: timeout,
		}),
		// Stop reconnecting to a runtime nobody asks about.
		grpc.WithIdleTimeout(time.Minute),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("new grpc client: %w", err)
	}
	ep.conn, ep.rt = conn, runtimeapi.NewRuntimeServiceClient(conn)
	return ep.rt, nil
}

func (ep *endpoint) close() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.closed = true
	if ep.conn != nil {
		_ = ep.conn.Close() // only errors when already closed
		ep.conn, ep.rt = nil, nil
	}
}

// callErr wraps a failed call. When gRPC says Unavailable because the
// socket could not be dialed, the dial error itself is kept, so that
// errors.Is(err, fs.ErrNotExist) and the like work.
func (ep *endpoint) callErr(op string, err error) error {
	if status.Code(err) == codes.Unavailable {
		if d := ep.lastDial.Load(); d != nil {
			err = *d // a *net.OpError: "dial unix PATH: connect: ..."
		}
	}
	return &EndpointError{Endpoint: ep.path, Op: op, Err: err}
}

// notFound reports whether err means the runtime does not know the ID.
// containerd and CRI-O answer NotFound; cri-dockerd passes Docker's "No
// such container" through as Unknown.
func notFound(err error) bool {
	switch status.Code(err) {
	case codes.NotFound:
		return true
	case codes.Unknown:
		m := strings.ToLower(status.Convert(err).Message())
		return strings.Contains(m, "not found") || strings.Contains(m, "no such container")
	}
	return false
}

// errNoCRI marks an endpoint that does not serve the CRI RuntimeService
// (Docker's own containerd has the CRI plugin disabled): for lookups it is
// as if it did not know the container.
var errNoCRI = errors.New("endpoint does not serve the CRI runtime service")

// resolve asks every endpoint in turn. The first that knows the container
// answers; if all that answered said not found, the result wraps
// ErrNotFound; if any failed, it wraps ErrUnavailable, since the container
// might be the failed runtime's.
func (c *Client) resolve(ctx context.Context, id string) (Info, error) {
	if id == "" {
		return Info{}, fmt.Errorf("%w: empty container id", ErrNotFound)
	}
	eps := c.endpoints()
	if len(eps) == 0 {
		return Info{}, fmt.Errorf("%w: %w", ErrUnavailable, ErrNoEndpoints)
	}
	var errs []error
	for _, ep := range eps {
		info, err := c.resolveAt(ctx, ep, id)
		switch {
		case err == nil:
			return info, nil
		case errors.Is(err, ErrNotFound):
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Info{}, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
	}
	return Info{}, fmt.Errorf("%w: container %s", ErrNotFound, id)
}

// resolveAt looks id up at one endpoint: ContainerStatus for the container,
// ListContainers (filtered by ID) for its sandbox, PodSandboxStatus for the
// pod. An ID the runtime knows only as a sandbox (the pause container's
// cgroup) is answered from PodSandboxStatus alone. A failure after
// ContainerStatus leaves fields Missing rather than failing the lookup.
func (c *Client) resolveAt(ctx context.Context, ep *endpoint, id string) (Info, error) {
	rt, err := ep.client(c.opts.Timeout)
	if err != nil {
		return Info{}, &EndpointError{Endpoint: ep.path, Op: "connect", Err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	cs, err := rt.ContainerStatus(cctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	cancel()
	switch {
	case status.Code(err) == codes.Unimplemented:
		return Info{}, fmt.Errorf("%w: %w", ErrNotFound, ep.callErr("ContainerStatus", errNoCRI))
	case notFound(err) || (err == nil && cs.GetStatus() == nil):
		return c.resolveSandbox(ctx, ep, rt, id)
	case err != nil:
		return Info{}, ep.callErr("ContainerStatus", err)
	}
	st := cs.GetStatus()
	info := Info{
		ContainerID:   id,
		ContainerName: st.GetMetadata().GetName(),
		Image:         st.GetImage().GetImage(),
		ImageRef:      st.GetImageRef(),
		ImageID:       st.GetImageId(),
		Endpoint:      ep.path,
	}
	if info.Image == "" {
		info.Image = st.GetImage().GetUserSpecifiedImage()
	}
	labels := st.GetLabels()
	if info.ContainerName == "" {
		info.ContainerName = labels[labelContainerName]
	}

	var partial []error
	cctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
	lc, err := rt.ListContainers(cctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{Id: id},
	})
	cancel()
	if err != nil {
		partial = append(partial, ep.callErr("ListContainers", err))
	}
	for _, ctr := range lc.GetContainers() {
		if ctr.GetId() == id {
			info.SandboxID = ctr.GetPodSandboxId()
		}
	}
	podOK := false
	if info.SandboxID != "" {
		cctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		ps, err := rt.PodSandboxStatus(cctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: info.SandboxID})
		cancel()
		if err == nil && ps.GetStatus() != nil {
			setPod(&info, ps.GetStatus())
			podOK = true
		} else if err != nil {
			partial = append(partial, ep.callErr("PodSandboxStatus", err))
		}
	}
	if !podOK {
		info.PodName = labels[labelPodName]
		info.PodNamespace = labels[labelPodNamespace]
		info.PodUID = labels[labelPodUID]
	}
	info.Err = errors.Join(partial...)
	setMissing(&info)
	return info, nil
}

// resolveSandbox answers for an ID that is not a container: it may be a
// pod sandbox.
func (c *Client) resolveSandbox(ctx context.Context, ep *endpoint, rt runtimeapi.RuntimeServiceClient, id string) (Info, error) {
	cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	ps, err := rt.PodSandboxStatus(cctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	cancel()
	switch {
	case notFound(err) || (err == nil && ps.GetStatus() == nil):
		return Info{}, fmt.Errorf("%w: container %s on %s", ErrNotFound, id, ep.path)
	case err != nil:
		return Info{}, ep.callErr("PodSandboxStatus", err)
	}
	info := Info{ContainerID: id, Sandbox: true, SandboxID: id, Endpoint: ep.path}
	setPod(&info, ps.GetStatus())
	setMissing(&info)
	return info, nil
}

func setPod(info *Info, ps *runtimeapi.PodSandboxStatus) {
	md := ps.GetMetadata()
	info.PodName, info.PodNamespace, info.PodUID = md.GetName(), md.GetNamespace(), md.GetUid()
	info.PodLabels = ps.GetLabels()
	if info.PodLabels == nil {
		info.PodLabels = map[string]string{}
	}
}

func setMissing(info *Info) {
	var m []string
	if info.ContainerName == "" {
		m = append(m, FieldContainerName)
	}
	if info.Image == "" {
		m = append(m, FieldImage)
	}
	if info.ImageRef == "" {
		m = append(m, FieldImageRef)
	}
	if info.PodName == "" && info.PodUID == "" {
		m = append(m, FieldPod)
	}
	if info.PodLabels == nil {
		m = append(m, FieldPodLabels)
	}
	info.Missing = m
}

// sweepAt lists the containers and sandboxes one endpoint knows, adding
// their IDs to present. ok is false when either list failed.
func (c *Client) sweepAt(ctx context.Context, ep *endpoint, present map[string]struct{}) error {
	rt, err := ep.client(c.opts.Timeout)
	if err != nil {
		return &EndpointError{Endpoint: ep.path, Op: "connect", Err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	lc, err := rt.ListContainers(cctx, &runtimeapi.ListContainersRequest{})
	cancel()
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	if err != nil {
		return ep.callErr("ListContainers", err)
	}
	cctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
	ls, err := rt.ListPodSandbox(cctx, &runtimeapi.ListPodSandboxRequest{})
	cancel()
	if err != nil {
		return ep.callErr("ListPodSandbox", err)
	}
	for _, ctr := range lc.GetContainers() {
		present[ctr.GetId()] = struct{}{}
	}
	for _, sb := range ls.GetItems() {
		present[sb.GetId()] = struct{}{}
	}
	return nil
}
