package cri

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// State says how much Cached knows about a container.
type State uint8

const (
	// Known: the runtime answered; Info holds what it said (possibly with
	// some fields listed in Info.Missing). A Known entry past its TTL is
	// still returned as Known while a refresh runs in the background.
	Known State = iota + 1
	// Pending: a lookup is in flight and nothing is known yet (Info.Err
	// keeps the previous attempt's error, if it is a retry).
	Pending
	// Missing: every endpoint that answered said it does not know the
	// container (not a CRI container, or already removed). Info.Err wraps
	// ErrNotFound.
	Missing
	// Unavailable: no endpoint answered, or the cache could not take the
	// lookup. Info.Err says why (it wraps ErrUnavailable, ErrBusy or
	// ErrClosed).
	Unavailable
)

// String returns the lower-case name used in audit records.
func (s State) String() string {
	switch s {
	case Known:
		return "known"
	case Pending:
		return "pending"
	case Missing:
		return "missing"
	case Unavailable:
		return "unavailable"
	}
	return "invalid"
}

// Names of Info fields that Info.Missing can list.
const (
	FieldContainerName = "container.name"
	FieldImage         = "image"
	FieldImageRef      = "image.ref"
	FieldPod           = "pod"
	FieldPodLabels     = "pod.labels"
)

// Info is what the container runtime says about one container. Values
// returned by Cached share their slices and maps with the cache: do not
// modify them.
type Info struct {
	// ContainerID is the ID that was asked about.
	ContainerID string
	// Sandbox is true when ContainerID is a pod sandbox (the "pause"
	// container whose ID the sandbox shares), not an application container:
	// the pod fields are set, the container and image fields are empty.
	Sandbox bool
	// ContainerName is the container's name in its pod
	// (ContainerStatus.metadata.name, the name in the pod spec).
	ContainerName string
	// Image is the image the container runs, as the runtime names it
	// (ContainerStatus.image.image: a repository tag such as
	// docker.io/library/nginx:1.27 for containerd and CRI-O), or the
	// user-specified image when the runtime leaves that empty.
	Image string
	// ImageRef is the digested reference of the image
	// (ContainerStatus.image_ref, e.g. docker.io/library/nginx@sha256:...);
	// what Kubernetes shows as status.containerStatuses[].imageID. For an
	// image without a repository digest (built or imported locally, not
	// pulled) containerd gives the image ID instead ("sha256:..." of the
	// config), and ImageDigest is empty.
	ImageRef string
	// ImageID is the runtime's image identifier (ContainerStatus.image_id,
	// usually the sha256 of the image config); empty on older runtimes.
	ImageID string
	// SandboxID is the ID of the pod sandbox the container belongs to.
	SandboxID string
	// PodName, PodNamespace and PodUID identify the Kubernetes pod
	// (PodSandboxStatus.metadata; if that call failed, the kubelet's
	// io.kubernetes.pod.* container labels).
	PodName, PodNamespace, PodUID string
	// PodLabels are the pod sandbox's labels exactly as the runtime gives
	// them: the pod's labels plus those the kubelet adds
	// (io.kubernetes.pod.name, ...). Nil when not known.
	PodLabels map[string]string
	// Endpoint is the socket path of the runtime that answered.
	Endpoint string
	// Missing lists the fields (Field* constants) the runtime did not give
	// for a Known container, so an audit record can say what the decision
	// did not know; in the order of the constants. For the other states
	// nothing is known and Missing is nil: the State says so.
	Missing []string
	// Err is why the container is Missing or Unavailable, or, for a Known
	// container with Missing fields, the error that left them out (nil when
	// the runtime simply has no value).
	Err error
}

// ImageDigest returns the manifest digest in ImageRef ("sha256:..." after
// the "@"), or "" when ImageRef is not a repository digest reference.
func (i *Info) ImageDigest() string {
	if _, d, ok := strings.Cut(i.ImageRef, "@"); ok {
		return d
	}
	return ""
}

var (
	// ErrNotFound: the runtime does not know the container.
	ErrNotFound = errors.New("cri: container not known to the runtime")
	// ErrUnavailable: no runtime endpoint answered.
	ErrUnavailable = errors.New("cri: no container runtime answered")
	// ErrNoEndpoints: no endpoint is configured and none was discovered.
	ErrNoEndpoints = errors.New("cri: no container runtime socket found")
	// ErrBusy: the cache is full of lookups in flight; the caller should
	// ask again later.
	ErrBusy = errors.New("cri: too many container lookups in flight")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("cri: client closed")
)

// EndpointError is a failed call to one runtime endpoint. It matches
// context.DeadlineExceeded when the call timed out and context.Canceled
// when it was cancelled, whether the context or the server said so.
type EndpointError struct {
	// Endpoint is the socket path.
	Endpoint string
	// Op is the CRI method, e.g. "ContainerStatus".
	Op string
	// Err is the gRPC status error, or the dial error when the socket
	// could not be connected to.
	Err error
}

func (e *EndpointError) Error() string {
	return "cri: " + e.Op + " on " + e.Endpoint + ": " + e.Err.Error()
}

func (e *EndpointError) Unwrap() error { return e.Err }

// Is makes a timed-out call match context.DeadlineExceeded and a cancelled
// one context.Canceled: gRPC turns both into status errors that do not
// wrap the context's error.
func (e *EndpointError) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return status.Code(e.Err) == codes.DeadlineExceeded
	case context.Canceled:
		return status.Code(e.Err) == codes.Canceled
	}
	return false
}

// Timeout reports whether the call timed out.
func (e *EndpointError) Timeout() bool { return errors.Is(e, context.DeadlineExceeded) }
