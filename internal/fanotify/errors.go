package fanotify

import (
	"errors"
	"fmt"
	"syscall"
)

var (
	// ErrNotSupported means the kernel or platform lacks fanotify
	// permission events, or a flag a call asked for. On Linux it usually
	// means CONFIG_FANOTIFY_ACCESS_PERMISSIONS is not set.
	ErrNotSupported = errors.New("fanotify: not supported")

	// ErrClosed is returned by every call on a Listener after Close.
	ErrClosed = errors.New("fanotify: listener closed")

	// ErrMalformedEvent means bytes read from the kernel do not form a
	// valid fanotify event record. Decode returns it wrapped with the reason.
	ErrMalformedEvent = errors.New("fanotify: malformed event")
)

// Error is a failed kernel call, modelled on os.PathError. It unwraps to its
// errno, so errors.Is(err, os.ErrPermission) works, and it matches
// ErrNotSupported when the errno means the kernel lacks the feature.
type Error struct {
	// Op names the system call or step: "fanotify_init", "fanotify_mark",
	// "read", "write response", "readlink", "fstat".
	Op string
	// Path is the file the call was about; empty when there is none.
	Path string
	// Errno is the error the kernel returned.
	Errno syscall.Errno

	// unsupported is set when the call site knows that this errno,
	// although ambiguous in general (EINVAL), means a missing feature.
	unsupported bool
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "fanotify: " + e.Op + ": " + e.Errno.Error()
	}
	return "fanotify: " + e.Op + " " + e.Path + ": " + e.Errno.Error()
}

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// Is reports whether e matches target: ErrNotSupported for errnos that mean
// a missing kernel feature.
func (e *Error) Is(target error) bool {
	if target == ErrNotSupported {
		return e.unsupported || errnoNotSupported(e.Errno)
	}
	return false
}

// Pre-built decode errors: the decoder runs once per event and must not
// allocate.
var (
	errShortRecord  = fmt.Errorf("%w: record shorter than the event header", ErrMalformedEvent)
	errVersion      = fmt.Errorf("%w: metadata version is not %d", ErrMalformedEvent, metadataVersion)
	errEventLen     = fmt.Errorf("%w: event_len or metadata_len out of bounds", ErrMalformedEvent)
	errInfoRecord   = fmt.Errorf("%w: info record out of bounds", ErrMalformedEvent)
	errDuplicatePid = fmt.Errorf("%w: more than one pidfd record", ErrMalformedEvent)
)

// PanicError is returned by Handle when the handler panicked. Every event of
// the batch was still answered with the failure verdict and closed.
type PanicError struct {
	// Value is what the handler passed to panic.
	Value any
	// Stack is the goroutine stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("fanotify: handler panicked: %v", e.Value)
}
