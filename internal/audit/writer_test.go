package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// memSink collects lines; gate, when set, blocks every Write until it is
// closed, standing for a stalled disk or a full pipe.
type memSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	entered chan struct{} // receives once per Write call, if not nil
	gate    chan struct{}
	err     error
	closed  bool
}

func (s *memSink) Write(p []byte) error {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.writes++
	s.buf.Write(p)
	return nil
}

func (s *memSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *memSink) records(t *testing.T) []Record {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return parseLines(t, s.buf.Bytes())
}

func parseLines(t *testing.T, b []byte) []Record {
	t.Helper()
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func closeW(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushes(t *testing.T) {
	s := &memSink{}
	w := New(Options{QueueSize: 10000, Limit: noLimit}, s)
	for i := range 5000 {
		r := sampleRecord()
		r.PID = int32(i)
		w.Write(&r)
	}
	closeW(t, w)
	recs := s.records(t)
	if len(recs) != 5000 || w.Written() != 5000 || w.Dropped() != 0 {
		t.Fatalf("%d records, written %d, dropped %d", len(recs), w.Written(), w.Dropped())
	}
	for i, r := range recs {
		if r.PID != int32(i) {
			t.Fatalf("record %d has pid %d: order lost", i, r.PID)
		}
	}
	if !s.closed {
		t.Error("sink not closed")
	}
	// After Close, Write drops and counts, never panics.
	w.Write(&recs[0])
	if w.Dropped() != 1 {
		t.Errorf("dropped %d after close", w.Dropped())
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestZeroTimeIsFilled(t *testing.T) {
	s := &memSink{}
	now := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	w := New(Options{Now: func() time.Time { return now }, Limit: noLimit}, s)
	w.Write(&Record{Decision: DecisionAudit})
	closeW(t, w)
	if recs := s.records(t); len(recs) != 1 || !recs[0].Time.Equal(now) {
		t.Fatalf("records %+v", recs)
	}
}

// A sink that blocks forever must not block Write: records are dropped
// and counted, and once the sink moves again the log says how many.
func TestStalledSinkNeverBlocksWrite(t *testing.T) {
	s := &memSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	const queue = 8
	w := New(Options{QueueSize: queue, Limit: noLimit}, s)
	r := sampleRecord()
	w.Write(&r)
	<-s.entered // the goroutine is now stuck in the sink with one record

	const n = 10000
	start := time.Now()
	for range n {
		w.Write(&r)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d writes to a stalled sink took %v", n, d)
	}
	if got := w.Dropped(); got != n-queue {
		t.Fatalf("dropped %d, want %d", got, n-queue)
	}
	close(s.gate) // unstall
	closeW(t, w)
	recs := s.records(t)
	var data, dropped int
	var count uint64
	for _, r := range recs {
		if r.Decision == DecisionDropped {
			dropped++
			count += r.Count
		} else {
			data++
		}
	}
	if data != 1+queue || dropped == 0 || count != n-queue {
		t.Fatalf("%d data records, %d dropped records counting %d; want %d, >0, %d", data, dropped, count, 1+queue, n-queue)
	}
	// The "dropped" record comes right after the batch that was stuck.
	if recs[1].Decision != DecisionDropped {
		t.Errorf("second record is %q, want the dropped record", recs[1].Decision)
	}
	if w.Written() != 1+queue {
		t.Errorf("written %d", w.Written())
	}
}

func TestCloseBoundedByContext(t *testing.T) {
	s := &memSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	w := New(Options{QueueSize: 4, Limit: noLimit}, s)
	r := sampleRecord()
	w.Write(&r)
	<-s.entered
	w.Write(&r)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close on a stalled sink: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Close not bounded by its context")
	}
	close(s.gate)
	<-w.done
	// Sinks are closed once the goroutine stops.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		c := s.closed
		s.mu.Unlock()
		if c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sink never closed")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSinkErrors(t *testing.T) {
	bad := &memSink{err: errors.New("disk full")}
	good := &memSink{}
	var mu sync.Mutex
	var errs []error
	w := New(Options{OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }, Limit: noLimit}, bad, good)
	r := sampleRecord()
	w.Write(&r)
	closeW(t, w)
	if w.Failed() != 1 || w.Written() != 0 || len(errs) == 0 {
		t.Fatalf("failed %d written %d errs %v", w.Failed(), w.Written(), errs)
	}
	if len(good.records(t)) != 1 {
		t.Error("the healthy sink did not get the record")
	}
}

// Run with -race: many goroutines write while the writer encodes.
func TestConcurrentWriters(t *testing.T) {
	s := &memSink{}
	w := New(Options{QueueSize: 1 << 16, Limit: noLimit}, s)
	const g, per = 8, 2000
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			r := sampleRecord()
			for j := range per {
				r.PID = int32(i*per + j)
				r.Path = fmt.Sprintf("/srv/%d/%d", i, j)
				w.Write(&r) // r is reused at once: Write must have copied it
			}
		})
	}
	wg.Wait()
	closeW(t, w)
	recs := s.records(t)
	seen := map[int32]bool{}
	for _, r := range recs {
		if r.Decision == DecisionDropped {
			continue
		}
		if want := fmt.Sprintf("/srv/%d/%d", r.PID/per, r.PID%per); r.Path != want {
			t.Fatalf("pid %d has path %s: record torn", r.PID, r.Path)
		}
		seen[r.PID] = true
	}
	if uint64(len(seen))+w.Dropped() != g*per {
		t.Fatalf("%d distinct + %d dropped != %d", len(seen), w.Dropped(), g*per)
	}
}

func TestReopenCallsSinks(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileSink(dir+"/audit.log", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := New(Options{Limit: noLimit}, fs, NewStreamSink(io.Discard))
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	closeW(t, w)
}

type discard struct{}

func (discard) Write([]byte) error { return nil }
func (discard) Close() error       { return nil }

// BenchmarkWrite measures what the decision path pays for Write.
//
//   - accepted: the queue has room (the timer stops while it drains every
//     1,000 records), so every record is queued: this is the cost a
//     decision pays when the log keeps up.
//   - full: the queue is full and stays full (a stalled sink): the cost of
//     a drop.
//   - throughput: Write then encode and hand to a discarding sink,
//     end to end (Close inside the timer); Write waits instead of
//     dropping, so ns/op is the sustained cost of one record.
func BenchmarkWrite(b *testing.B) {
	b.Run("accepted", func(b *testing.B) {
		w := New(Options{QueueSize: 4096, Limit: noLimit}, discard{})
		r := sampleRecord()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w.Write(&r)
			if i++; i%1000 == 0 {
				b.StopTimer()
				for w.Queued() > 0 {
					runtime.Gosched()
				}
				b.StartTimer()
			}
		}
		b.StopTimer()
		if err := w.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		if w.Dropped() != 0 {
			b.Fatalf("%d dropped", w.Dropped())
		}
	})
	b.Run("full", func(b *testing.B) {
		s := &memSink{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		w := New(Options{QueueSize: 16, Limit: noLimit}, s)
		r := sampleRecord()
		w.Write(&r)
		<-s.entered
		for range 16 {
			w.Write(&r)
		}
		b.ReportAllocs()
		for b.Loop() {
			w.Write(&r)
		}
		b.StopTimer()
		close(s.gate)
		if err := w.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("throughput", func(b *testing.B) {
		const queue = 4096
		w := New(Options{QueueSize: queue, Limit: noLimit}, discard{})
		r := sampleRecord()
		b.ReportAllocs()
		for b.Loop() {
			for w.Queued() >= queue {
				runtime.Gosched()
			}
			w.Write(&r)
		}
		if err := w.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if w.Dropped() != 0 {
			b.Fatalf("%d dropped", w.Dropped())
		}
	})
}

// BenchmarkWriteParallel is Write from GOMAXPROCS goroutines at once,
// records dropped when the encoder cannot keep up (reported as dropped/op).
func BenchmarkWriteParallel(b *testing.B) {
	w := New(Options{QueueSize: 1 << 16, Limit: noLimit}, discard{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := sampleRecord()
		for pb.Next() {
			w.Write(&r)
		}
	})
	b.StopTimer()
	_ = w.Close(context.Background())
	b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
}

// TestLingerWritesBurstsInFewBatches: with Linger, a burst of records is
// written in a few sink writes instead of one per wake-up, nothing is
// lost, and Close does not wait for the linger to pass.
func TestLingerWritesBurstsInFewBatches(t *testing.T) {
	sink := &memSink{}
	w := New(Options{Linger: time.Hour, Limit: noLimit}, sink)
	for i := range 1000 {
		w.Write(&Record{Decision: DecisionDeny, Path: "/srv/f", PID: int32(i)})
	}
	done := make(chan error, 1)
	go func() { done <- w.Close(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the linger")
	}
	if got := len(sink.records(t)); got != 1000 {
		t.Fatalf("%d records written, want 1000", got)
	}
	sink.mu.Lock()
	writes := sink.writes
	sink.mu.Unlock()
	if writes > 10 {
		t.Fatalf("1000 records took %d sink writes", writes)
	}
}

// noLimit turns the limiter off for the tests of the writer itself, which
// write many identical records.
var noLimit = LimitOptions{Window: -1}
