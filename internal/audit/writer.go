package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultQueueSize  = 4096
	DefaultBatchBytes = 64 << 10
)

// ErrClosed is returned by a sink used after Close.
var ErrClosed = errors.New("audit: closed")

// Options tune a Writer. The zero value is usable.
type Options struct {
	// QueueSize is how many records may wait for the background
	// goroutine; a Write that finds the queue full drops its record.
	// Each slot holds a Record by value (264 bytes on 64-bit; its
	// strings share the caller's memory), allocated once by New.
	// DefaultQueueSize when <= 0.
	QueueSize int
	// BatchBytes is how many encoded bytes the goroutine gathers from the
	// queue before it writes them to the sinks in one call.
	// DefaultBatchBytes when <= 0.
	BatchBytes int
	// OnError, when set, is called from the background goroutine with
	// each sink error. It must return
	// quickly: while it runs, nothing is written. The agent logs these to
	// its diagnostic log.
	OnError func(error)
	// Now gives the time for records written without one and for
	// "dropped" records; time.Now when nil. Tests set it.
	Now func() time.Time
	// Linger is how long the goroutine waits after writing a batch before
	// it looks at the queue again, so that a burst of records is written
	// in a few large batches instead of waking it for each record (each
	// wake-up costs the decision path CPU on a small machine). Records are
	// written at most this late. Zero means no wait; Close does not wait.
	Linger time.Duration
	// Limit bounds what one user's activity writes (see LimitOptions);
	// the zero value applies the defaults.
	Limit LimitOptions
}

// Writer queues records and writes them to its sinks from a background
// goroutine. Write never blocks; see the package comment. It is safe for
// concurrent use.
type Writer struct {
	opts  Options
	sinks []Sink
	queue chan Record
	stop  chan struct{}
	done  chan struct{}

	closed    atomic.Bool
	abort     atomic.Bool
	closeOnce sync.Once
	closeErr  error

	limit *limiter // nil when off

	dropped atomic.Uint64 // records Write could not queue
	written atomic.Uint64 // records every sink accepted
	failed  atomic.Uint64 // records at least one sink refused
	// reported is how many drops "dropped" records have announced; only
	// the goroutine touches it.
	reported uint64
}

// New starts a Writer over sinks (none is allowed: records are then only
// counted). Close it to flush and to close the sinks.
func New(opts Options, sinks ...Sink) *Writer {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = DefaultBatchBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{
		opts:  opts,
		sinks: sinks,
		queue: make(chan Record, opts.QueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		limit: newLimiter(opts.Limit),
	}
	go w.run()
	return w
}

// Write queues a copy of r and returns at once; r may be reused when Write
// returns. A zero r.Time is set to the current time. When the queue is full
// (the sinks are slower than the decisions, or stalled), or the Writer is
// closed, the record is dropped and counted instead.
func (w *Writer) Write(r *Record) {
	if w.closed.Load() {
		w.dropped.Add(1)
		return
	}
	rec := *r
	if rec.Time.IsZero() {
		rec.Time = w.opts.Now()
	}
	if w.limit != nil && limited(rec.Decision) && !w.limit.admit(&rec) {
		return
	}
	select {
	case w.queue <- rec:
	default:
		w.dropped.Add(1)
	}
}

// Dropped is the number of records dropped since New.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written is the number of records (not counting "dropped" records) that
// every sink accepted.
func (w *Writer) Written() uint64 { return w.written.Load() }

// Failed is the number of records that at least one sink refused with an
// error (reported through Options.OnError).
func (w *Writer) Failed() uint64 { return w.failed.Load() }

// Queued is the number of records waiting in the queue now.
func (w *Writer) Queued() int { return len(w.queue) }

// Reopener is a Sink that can reopen its destination, as a file sink does
// after an external log rotation.
type Reopener interface {
	Reopen() error
}

// Reopen reopens every sink that is a Reopener (call it on SIGHUP). It is
// safe to call while records are being written.
func (w *Writer) Reopen() error {
	var errs []error
	for _, s := range w.sinks {
		if ro, ok := s.(Reopener); ok {
			if err := ro.Reopen(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops accepting records, writes what is queued (plus a final
// "dropped" record if needed) and closes the sinks. When ctx ends first,
// Close returns an error saying how many records were left; the sinks are
// then closed in the background once the goroutine stops, which it does
// after the write in progress returns. Records written concurrently with
// Close may be lost. Close is idempotent: later calls return the first
// result.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.stop)
		select {
		case <-w.done:
			w.closeErr = w.closeSinks()
		case <-ctx.Done():
			w.abort.Store(true)
			w.closeErr = fmt.Errorf("audit: close: %d records not written: %w", len(w.queue), context.Cause(ctx))
			go func() {
				<-w.done
				_ = w.closeSinks()
			}()
		}
	})
	return w.closeErr
}

func (w *Writer) closeSinks() error {
	var errs []error
	for _, s := range w.sinks {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close sink: %w", err))
		}
	}
	return errors.Join(errs...)
}

// run is the background goroutine: it encodes queued records into one
// reused buffer and writes them in batches.
func (w *Writer) run() {
	defer close(w.done)
	buf := make([]byte, 0, w.opts.BatchBytes+4096)
	var linger *time.Timer
	if w.opts.Linger > 0 {
		linger = time.NewTimer(w.opts.Linger)
		linger.Stop()
	}
	var window <-chan time.Time
	if w.limit != nil {
		t := time.NewTicker(w.limit.opts.Window)
		defer t.Stop()
		window = t.C
	}
	for {
		select {
		case <-window:
			buf = w.summarize(buf[:0])
		case r := <-w.queue:
			buf = w.batch(buf[:0], &r)
			if linger != nil {
				linger.Reset(w.opts.Linger)
				select {
				case <-linger.C:
				case <-w.stop:
					// Close: go on to drain the queue below.
					linger.Stop()
				}
			}
		case <-w.stop:
			for !w.abort.Load() {
				select {
				case r := <-w.queue:
					buf = w.batch(buf[:0], &r)
					continue
				default:
				}
				break
			}
			if !w.abort.Load() {
				buf = w.summarize(buf[:0])
				w.reportDrops(buf[:0])
			}
			return
		}
	}
}

// batch encodes first and whatever else is queued, up to BatchBytes,
// writes it, and then reports drops. It returns the buffer for reuse.
func (w *Writer) batch(buf []byte, first *Record) []byte {
	buf = AppendJSON(buf, first)
	n := uint64(1)
gather:
	for len(buf) < w.opts.BatchBytes {
		select {
		case r := <-w.queue:
			buf = AppendJSON(buf, &r)
			n++
		default:
			break gather
		}
	}
	if w.flush(buf) {
		w.written.Add(n)
	} else {
		w.failed.Add(n)
	}
	w.reportDrops(buf[:0])
	return buf
}

// summarize ends the limiter's window and writes its summary records.
func (w *Writer) summarize(buf []byte) []byte {
	if w.limit == nil {
		return buf
	}
	recs := w.limit.endWindow(w.opts.Now())
	if len(recs) == 0 {
		return buf
	}
	for i := range recs {
		buf = AppendJSON(buf, &recs[i])
	}
	if w.flush(buf) {
		w.written.Add(uint64(len(recs)))
	} else {
		w.failed.Add(uint64(len(recs)))
	}
	return buf
}

// reportDrops writes a "dropped" record when records were dropped since
// the last one.
func (w *Writer) reportDrops(buf []byte) {
	d := w.dropped.Load()
	if d == w.reported {
		return
	}
	r := Record{Time: w.opts.Now(), Decision: DecisionDropped, Count: d - w.reported}
	if w.flush(AppendJSON(buf, &r)) {
		w.reported = d
	}
}

// flush writes buf to every sink and reports whether all accepted it.
func (w *Writer) flush(buf []byte) bool {
	ok := true
	for _, s := range w.sinks {
		// Sink errors already say which sink and step failed.
		if err := s.Write(buf); err != nil {
			ok = false
			if w.opts.OnError != nil {
				w.opts.OnError(err)
			}
		}
	}
	return ok
}
