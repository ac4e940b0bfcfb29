package cri

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultTTL           = 10 * time.Minute
	DefaultNegativeTTL   = 30 * time.Second
	DefaultRetryInterval = 2 * time.Second
	DefaultCacheSize     = 4096
	DefaultMaxConcurrent = 4
	DefaultSweepInterval = time.Minute
)

// Options configure a Client. The zero value discovers the runtime sockets
// under "/" and uses the defaults above.
type Options struct {
	// Endpoints are the runtime sockets to ask, in order ("/path" or
	// "unix:///path"). When empty, Discover(Root) is run before every
	// lookup, so a runtime that starts after the agent is found.
	Endpoints []string
	// Root is where Discover looks when Endpoints is empty; "/" when
	// empty.
	Root string
	// Timeout bounds each call to a runtime (a lookup makes up to three per
	// endpoint). Default DefaultTimeout.
	Timeout time.Duration
	// TTL is how long a Known answer is used before it is refreshed in the
	// background (the stale answer is served meanwhile). Default
	// DefaultTTL.
	TTL time.Duration
	// NegativeTTL is how long a Missing answer, or a Known one with fields
	// missing because of an error, is kept before asking again. Default
	// DefaultNegativeTTL.
	NegativeTTL time.Duration
	// RetryInterval is how long an Unavailable answer is kept before
	// asking again (NegativeTTL when no runtime socket exists at all).
	// Default DefaultRetryInterval.
	RetryInterval time.Duration
	// CacheSize bounds the number of containers remembered, lookups in
	// flight included. Default DefaultCacheSize.
	CacheSize int
	// MaxConcurrent bounds the background lookups running at once; the
	// others wait in a queue (bounded by CacheSize). Default
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// SweepInterval is how often Cached starts a background Sweep, which
	// drops containers the runtimes no longer list. Default
	// DefaultSweepInterval; negative disables automatic sweeps.
	SweepInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	return o
}

// Client answers questions about containers from the CRI runtimes on the
// node, through a bounded cache. It is safe for concurrent use.
type Client struct {
	opts Options
	now  func() time.Time

	ctx    context.Context // cancelled by Close; parent of background calls
	cancel context.CancelFunc
	wg     sync.WaitGroup // background lookups and sweeps

	epMu     sync.Mutex
	epClosed bool                 // Close has closed eps
	fixed    []*endpoint          // from Options.Endpoints
	eps      map[string]*endpoint // every endpoint ever used, by path

	mu      sync.RWMutex
	closed  bool
	entries map[string]*entry
	clock   clock
	queue   []*entry // lookups waiting for a worker
	workers int      // running worker goroutines

	base      time.Time    // New's time: sweep times are offsets from it (monotonic)
	lastSweep atomic.Int64 // offset of the latest sweep start
	sweeping  atomic.Bool
}

// entry is one cached container. Its fields are guarded by Client.mu,
// except ref.
type entry struct {
	id      string
	info    Info
	state   State
	expires time.Time // when to ask the runtime again
	busy    bool      // a lookup is queued or running
	slot    int       // index in Client.clock.slots
	ref     atomic.Bool
}

// New returns a Client. It does not connect: the first lookup does.
func New(opts Options) *Client {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:    opts,
		now:     time.Now,
		ctx:     ctx,
		cancel:  cancel,
		eps:     make(map[string]*endpoint),
		entries: make(map[string]*entry, min(opts.CacheSize, 1024)),
		clock:   clock{max: opts.CacheSize},
	}
	for _, s := range opts.Endpoints {
		ep := newEndpoint(s)
		c.fixed = append(c.fixed, ep)
		c.eps[ep.path] = ep
	}
	c.base = c.now()
	return c
}

// endpoints returns the endpoints to ask: the configured ones, or those
// discovered now.
func (c *Client) endpoints() []*endpoint {
	if len(c.fixed) > 0 {
		return c.fixed
	}
	paths := Discover(c.opts.Root)
	c.epMu.Lock()
	defer c.epMu.Unlock()
	if c.epClosed {
		return nil
	}
	out := make([]*endpoint, 0, len(paths))
	for _, p := range paths {
		ep := c.eps[p]
		if ep == nil {
			ep = &endpoint{path: p}
			c.eps[p] = ep
		}
		out = append(out, ep)
	}
	return out
}

// Cached returns at once what is known about the container. It never
// waits for a runtime: on a miss, or when the answer is due for a refresh,
// it starts one background lookup for the ID (concurrent callers share it)
// and returns Pending (or the stale Known answer); a later call sees the
// result. See State for what each state means. A hit does not allocate.
func (c *Client) Cached(id string) (Info, State) {
	now := c.now()
	c.maybeSweep(now)
	c.mu.RLock()
	e := c.entries[id]
	if e != nil {
		if !e.ref.Load() {
			e.ref.Store(true)
		}
		info, st := e.info, e.state
		due := !e.busy && !now.Before(e.expires)
		c.mu.RUnlock()
		if !due {
			return info, st
		}
	} else {
		c.mu.RUnlock()
	}
	return c.slowCached(id, now)
}

// slowCached is Cached's miss and refresh path, under the write lock.
func (c *Client) slowCached(id string, now time.Time) (Info, State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e != nil {
		if e.busy || now.Before(e.expires) || c.closed {
			return e.info, e.state
		}
		// Due: a Known answer is served stale while it is refreshed; a
		// Missing or Unavailable one becomes Pending, keeping its error.
		e.busy = true
		if e.state != Known {
			e.state = Pending
		}
		c.enqueue(e)
		return e.info, e.state
	}
	if c.closed {
		return Info{ContainerID: id, Err: ErrClosed}, Unavailable
	}
	e = &entry{id: id, state: Pending, busy: true, info: Info{ContainerID: id}}
	if !c.insert(e) {
		return Info{ContainerID: id, Err: ErrBusy}, Unavailable
	}
	c.enqueue(e)
	return e.info, e.state
}

// enqueue queues a lookup of e and starts a worker if fewer than
// MaxConcurrent run. Workers exit when the queue is empty. c.mu held.
func (c *Client) enqueue(e *entry) {
	c.queue = append(c.queue, e)
	if c.workers < c.opts.MaxConcurrent {
		c.workers++
		c.wg.Add(1)
		go c.work()
	}
}

func (c *Client) work() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.workers--
			c.mu.Unlock()
			return
		}
		e := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		live := c.entries[e.id] == e
		c.mu.Unlock()
		if !live { // forgotten or evicted while queued
			continue
		}
		info, err := c.resolve(c.ctx, e.id)
		c.mu.Lock()
		e.busy = false
		if c.entries[e.id] == e {
			c.store(e, info, err, c.now())
		}
		c.mu.Unlock()
	}
}

// store records a lookup's result in e. c.mu held.
func (c *Client) store(e *entry, info Info, err error, now time.Time) {
	switch {
	case err == nil:
		e.info, e.state = info, Known
		if info.Err != nil {
			e.expires = now.Add(c.opts.NegativeTTL)
		} else {
			e.expires = now.Add(c.opts.TTL)
		}
	case errors.Is(err, ErrNotFound):
		// Also for a Known container that is gone.
		e.info, e.state = Info{ContainerID: e.id, Err: err}, Missing
		e.expires = now.Add(c.opts.NegativeTTL)
	case e.state == Known:
		// Keep serving what was known; ask again soon.
		e.expires = now.Add(c.opts.RetryInterval)
	default:
		e.info, e.state = Info{ContainerID: e.id, Err: err}, Unavailable
		e.expires = now.Add(c.opts.RetryInterval)
		if errors.Is(err, ErrNoEndpoints) {
			// A node without a CRI runtime (plain Docker, Podman): a
			// runtime socket appearing is rare; do not look every few
			// seconds.
			e.expires = now.Add(c.opts.NegativeTTL)
		}
	}
}

// Lookup asks the runtimes about the container now, waiting for the
// answer, and caches it. For tools and tests, not for the decision path.
// A container no runtime knows gives an error wrapping ErrNotFound; no
// runtime answering, one wrapping ErrUnavailable. A Known answer may still
// list Missing fields, with the cause in Info.Err.
func (c *Client) Lookup(ctx context.Context, id string) (Info, error) {
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return Info{ContainerID: id}, ErrClosed
	}
	info, err := c.resolve(ctx, id)
	if ctx.Err() != nil {
		return Info{ContainerID: id}, fmt.Errorf("cri: lookup %s: %w", id, err)
	}
	c.mu.Lock()
	e := c.entries[id]
	if e == nil && !c.closed {
		e = &entry{id: id, info: Info{ContainerID: id}, state: Pending}
		if !c.insert(e) {
			e = nil
		}
	}
	if e != nil {
		c.store(e, info, err, c.now())
		info = e.info
	}
	c.mu.Unlock()
	if err != nil {
		return Info{ContainerID: id, Err: err}, fmt.Errorf("cri: lookup %s: %w", id, err)
	}
	return info, nil
}

// Forget drops what is known about the container; the next Cached asks
// again. A lookup in flight for it is discarded.
func (c *Client) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		c.remove(e)
	}
}

// Len returns the number of containers cached, lookups in flight included.
func (c *Client) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Sweep lists the containers and sandboxes of every endpoint and drops the
// Known ones that a runtime that answered no longer lists. Entries of a
// runtime that failed to answer are kept. Cached runs it in the background
// every SweepInterval.
func (c *Client) Sweep(ctx context.Context) error {
	present := make(map[string]struct{})
	answered := make(map[string]bool)
	var errs []error
	for _, ep := range c.endpoints() {
		if err := c.sweepAt(ctx, ep, present); err != nil {
			errs = append(errs, err)
			continue
		}
		answered[ep.path] = true
	}
	c.mu.Lock()
	for id, e := range c.entries {
		if _, ok := present[id]; !ok && e.state == Known && !e.busy && answered[e.info.Endpoint] {
			c.remove(e)
		}
	}
	c.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("cri: sweep: %w", errors.Join(errs...))
	}
	return nil
}

// maybeSweep starts a background Sweep when one is due.
func (c *Client) maybeSweep(now time.Time) {
	if c.opts.SweepInterval < 0 {
		return
	}
	at := int64(now.Sub(c.base))
	if at-c.lastSweep.Load() < int64(c.opts.SweepInterval) || !c.sweeping.CompareAndSwap(false, true) {
		return
	}
	c.lastSweep.Store(at)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.sweeping.Store(false)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.sweeping.Store(false)
		_ = c.Sweep(c.ctx) // the next sweep tries again; lookups report errors
	}()
}

// Close stops background work, waits for it, and closes the connections.
// Cached still answers from the cache afterwards, but starts no lookup.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.epMu.Lock()
	defer c.epMu.Unlock()
	c.epClosed = true
	for _, ep := range c.eps {
		ep.close()
	}
	return nil
}
