package audit

import (
	"sync"
	"time"
)

// Decision values the limiter writes.
const (
	// DecisionSuppressed counts the records of one uid that went over its
	// share of a window: UID and Count say whose and how many.
	DecisionSuppressed = "suppressed"
)

// Defaults for LimitOptions fields left zero.
const (
	DefaultRepeatWindow = 10 * time.Second
	DefaultPerUID       = 1000
	DefaultMaxKeys      = 8192
)

// LimitOptions bound what one user's activity can write, so that a user
// who makes the agent deny something in a loop can neither fill the disk
// nor rotate other records away.
type LimitOptions struct {
	// Window: within it, a record identical to one already written (same
	// decision, operation, path, process executable and uid, rule and
	// reason) is counted instead of written; at the end of the window one
	// copy is written with Repeated set to that count. Zero means
	// DefaultRepeatWindow; negative turns the limiter off.
	Window time.Duration
	// PerUID is how many records one uid may cause per window; beyond
	// that its records are counted and reported in one "suppressed"
	// record at the end of the window. Zero means DefaultPerUID.
	PerUID int
	// MaxKeys bounds the distinct records remembered in a window (memory):
	// beyond it new records are still limited per uid, not folded.
	MaxKeys int
}

// limited reports whether the decision is one the limiter applies to:
// those a subject's activity causes.
func limited(decision string) bool {
	switch decision {
	case DecisionDropped, DecisionSuppressed:
		return false
	}
	return true
}

type limitKey struct {
	decision, operation, path, exe, rule, reason, containerID string
	uid                                                       uint32
}

type limiter struct {
	opts LimitOptions

	mu         sync.Mutex
	seen       map[limitKey]*repeat
	perUID     map[uint32]int
	suppressed map[uint32]uint64
}

type repeat struct {
	first Record
	n     uint64
}

func newLimiter(opts LimitOptions) *limiter {
	if opts.Window < 0 {
		return nil
	}
	if opts.Window == 0 {
		opts.Window = DefaultRepeatWindow
	}
	if opts.PerUID <= 0 {
		opts.PerUID = DefaultPerUID
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	return &limiter{opts: opts, seen: map[limitKey]*repeat{}, perUID: map[uint32]int{}, suppressed: map[uint32]uint64{}}
}

// admit reports whether r is to be written now; if not, it is counted.
func (l *limiter) admit(r *Record) bool {
	k := limitKey{r.Decision, r.Operation, r.Path, r.Exe, r.Rule, r.Reason, r.ContainerID, r.UID}
	l.mu.Lock()
	defer l.mu.Unlock()
	if rep, ok := l.seen[k]; ok {
		rep.n++
		return false
	}
	if l.perUID[r.UID] >= l.opts.PerUID {
		l.suppressed[r.UID]++
		return false
	}
	l.perUID[r.UID]++
	if len(l.seen) < l.opts.MaxKeys {
		l.seen[k] = &repeat{first: *r}
	}
	return true
}

// endWindow starts a new window and returns the records that sum up the
// one that ended: a copy of each repeated record with Repeated set, and a
// "suppressed" record per uid that went over its share.
func (l *limiter) endWindow(now time.Time) []Record {
	l.mu.Lock()
	seen, suppressed := l.seen, l.suppressed
	l.seen, l.perUID, l.suppressed = map[limitKey]*repeat{}, map[uint32]int{}, map[uint32]uint64{}
	l.mu.Unlock()
	var out []Record
	for _, rep := range seen {
		if rep.n > 0 {
			r := rep.first
			r.Time, r.Repeated = now, rep.n
			out = append(out, r)
		}
	}
	for uid, n := range suppressed {
		out = append(out, Record{Time: now, Decision: DecisionSuppressed, UID: uid, Count: n})
	}
	return out
}
