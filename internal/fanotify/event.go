package fanotify

// Event is one decoded fanotify event (struct fanotify_event_metadata plus
// its info records, fanotify(7)).
//
// An Event owns up to two descriptors, Fd and PidFd, opened in this process
// by the kernel when the event was read. Whoever holds the Event must answer
// it (if it is a permission event) and then Close it, on every path. Handle
// does both; code that calls ReadEvents itself must too. Do not copy an
// Event and close both copies: Close clears the fields of the Event it is
// called on, so the second Close would close whatever descriptor reused the
// number.
type Event struct {
	// Mask is the set of event bits (OpenPerm, AccessPerm, OpenExecPerm,
	// QueueOverflow, OnDir, ...).
	Mask uint64
	// Fd is an open, read-only descriptor of the object, or NoFd. It is
	// also the key the kernel expects in the response.
	Fd int32
	// Pid is the thread-group id of the process that caused the event.
	Pid int32
	// PidFd is a pidfd of that process when the listener was opened with
	// FAN_REPORT_PIDFD; NoPidFd or PidFdError otherwise. A pidfd closes the
	// race of Pid being reused before /proc/Pid is read.
	PidFd int32
	// Err is non-nil when the event's record was malformed. Fd is still
	// valid and the event must still be answered and closed.
	Err error
}

// IsPerm reports whether the event is a permission event that the kernel
// waits on until it is answered.
func (e *Event) IsPerm() bool { return e.Mask&PermEvents != 0 && e.Fd >= 0 }

// IsOverflow reports whether the event says the queue overflowed.
func (e *Event) IsOverflow() bool { return e.Mask&QueueOverflow != 0 }

// Close closes the event's descriptors and sets them to NoFd and NoPidFd,
// so a second Close on the same Event does nothing. It does not answer the
// event: answer first, then close. It returns the first close error.
func (e *Event) Close() error {
	var err error
	if e.Fd >= 0 {
		err = closeFd(e.Fd)
		e.Fd = NoFd
	}
	if e.PidFd >= 0 {
		if perr := closeFd(e.PidFd); err == nil {
			err = perr
		}
		e.PidFd = NoPidFd
	}
	return err
}

// Verdict is a handler's answer to a permission event. The zero value is
// not a verdict: Handle answers it with the failure verdict.
type Verdict uint8

const (
	// Allow lets the operation proceed (FAN_ALLOW).
	Allow Verdict = 1
	// Deny fails the operation with EPERM (FAN_DENY).
	Deny Verdict = 2
	// Audit may be or'ed into Allow or Deny to have the kernel audit
	// subsystem record the decision (FAN_AUDIT). It is dropped unless
	// the listener was opened with Options.EnableAudit.
	Audit Verdict = 0x10
)

// valid reports whether v is Allow or Deny, optionally with Audit.
func (v Verdict) valid() bool {
	b := v &^ Audit
	return b == Allow || b == Deny
}

func (v Verdict) String() string {
	s := "invalid"
	switch v &^ Audit {
	case Allow:
		s = "allow"
	case Deny:
		s = "deny"
	}
	if v&Audit != 0 {
		s += "+audit"
	}
	return s
}

// Response is one answer for RespondAll.
type Response struct {
	// Fd is the Event.Fd being answered.
	Fd int32
	// Verdict is Allow or Deny, optionally with Audit.
	Verdict Verdict
}
