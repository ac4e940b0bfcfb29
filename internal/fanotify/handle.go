package fanotify

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
)

// Handler decides one event. It gets a pointer into Handle's batch, valid
// only until it returns: it must neither keep the Event nor its descriptors,
// and need not close them. It must not open files on a marked filesystem
// itself (use the Event's Fd): the open would wait for an answer from the
// very loop that is running the handler.
type Handler func(e *Event) Verdict

// HandleOptions tune Handle.
type HandleOptions struct {
	// FailVerdict answers an event when the handler panics or returns
	// something other than Allow or Deny, or when the event's record is
	// malformed. The zero value means Allow: fail open, as the kernel
	// does when the listener dies.
	FailVerdict Verdict
	// Overflow, when set, is called once per queue-overflow event. The
	// kernel allowed the permission events it could not queue.
	Overflow func()
	// BufferSize is the read buffer in bytes; zero means 64 KiB.
	BufferSize int
}

// Handle reads events until ctx is done or the Listener is closed, and for
// each one calls h, answers the kernel and closes the event's descriptors,
// on every path: a panicking handler, a malformed record, a failed write.
//
// Events of the listener's own process (its own opens, reported with its own
// pid) are allowed at once without calling h: deciding them could block the
// process on itself.
//
// Handle returns nil after Close, ctx.Err() when ctx is done, a *PanicError
// when h panicked (after answering the whole batch with FailVerdict), or the
// error of a failed read or write. Events the kernel queued but Handle did
// not read stay pending until the Listener reads them or is closed; close
// the Listener when Handle returns for good.
func (l *Listener) Handle(ctx context.Context, h Handler, opts HandleOptions) error {
	if opts.FailVerdict == 0 {
		opts.FailVerdict = Allow
	}
	if !opts.FailVerdict.valid() {
		return fmt.Errorf("fanotify: handle: invalid failure verdict %d", opts.FailVerdict)
	}
	size := opts.BufferSize
	if size == 0 {
		size = 64 << 10
	}
	buf := make([]byte, size)
	events := make([]Event, 0, size/metadataLen)
	resp := make([]Response, 0, cap(events))
	for {
		evs, rerr := l.ReadEvents(ctx, buf, events)
		herr := l.dispatch(evs, h, &opts, resp)
		switch {
		case rerr == nil && herr == nil:
			continue
		case herr != nil:
			if errors.Is(herr, ErrClosed) {
				return nil
			}
			return herr
		case errors.Is(rerr, ErrClosed):
			return nil
		case ctx.Err() != nil && rerr == ctx.Err():
			return rerr
		default:
			return fmt.Errorf("handle: %w", rerr)
		}
	}
}

// dispatch answers and closes every event of evs. Own-process events are
// answered first, in their own write, so the listener's other goroutines
// never wait on the handler.
func (l *Listener) dispatch(evs []Event, h Handler, opts *HandleOptions, resp []Response) error {
	if len(evs) == 0 {
		return nil
	}
	// Whatever happens below, every descriptor is closed.
	defer func() {
		for i := range evs {
			evs[i].Close()
		}
	}()

	resp = resp[:0]
	for i := range evs {
		if e := &evs[i]; e.IsPerm() && e.Pid == l.pid {
			resp = append(resp, Response{Fd: e.Fd, Verdict: Allow})
		}
	}
	var werr error
	if len(resp) > 0 {
		werr = l.RespondAll(resp)
	}

	resp = resp[:0]
	var perr *PanicError
	for i := range evs {
		e := &evs[i]
		fd, perm := e.Fd, e.IsPerm()
		switch {
		case e.IsOverflow():
			if opts.Overflow != nil {
				opts.Overflow()
			}
			continue
		case fd < 0 || e.Pid == l.pid:
			continue // nothing to answer, or our own (answered above)
		}
		v := opts.FailVerdict
		if e.Err == nil && perr == nil {
			v, perr = callHandler(h, e)
			if !v.valid() {
				v = opts.FailVerdict
			}
		}
		if perm {
			resp = append(resp, Response{Fd: fd, Verdict: v})
		}
	}
	if len(resp) > 0 {
		if err := l.RespondAll(resp); werr == nil {
			werr = err
		}
	}
	if perr != nil {
		return perr
	}
	if werr != nil {
		return fmt.Errorf("handle: %w", werr)
	}
	return nil
}

// callHandler runs h, turning a panic into a *PanicError.
func callHandler(h Handler, e *Event) (v Verdict, perr *PanicError) {
	defer func() {
		if r := recover(); r != nil {
			v, perr = 0, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return h(e), nil
}
