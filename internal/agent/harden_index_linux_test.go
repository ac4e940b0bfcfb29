package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Issue #17, cases 5 and 8. The tests use only what the agent had before
// their fixes (the index's lock, its lookup, the overflow counter, Reload),
// so that they can be run against the code before them.

// maxQueuedEvents is the kernel's queue limit for fanotify groups created
// without FAN_UNLIMITED_QUEUE. The kernel copies it into a group when it
// creates it (TestUnlimitedQueueNeverLetsAnOpenThroughSerial in
// internal/fanotify).
const maxQueuedEvents = "/proc/sys/fs/fanotify/max_queued_events"

func queueLimit(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(maxQueuedEvents)
	if err != nil {
		t.Skipf("queue limit unknown: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %q", maxQueuedEvents, b)
	}
	return n
}

// lowerQueueLimit sets max_queued_events to n until this process holds two
// more fanotify groups than now (the agent's listener and name watcher,
// which keep the limit they were created with), or until restore is
// called, whichever comes first; t.Cleanup restores it too. The sysctl is
// global, so the window is kept to the agent's start.
func lowerQueueLimit(t *testing.T, n int) (restore func()) {
	t.Helper()
	testutil.RequireRoot(t)
	old, err := os.ReadFile(maxQueuedEvents)
	if err != nil {
		t.Skipf("queue limit unknown: %v", err)
	}
	before := fanotifyGroups()
	if err := os.WriteFile(maxQueuedEvents, []byte(strconv.Itoa(n)), 0o644); err != nil {
		t.Fatalf("lower %s: %v", maxQueuedEvents, err)
	}
	var (
		once   sync.Once
		errMu  sync.Mutex
		resErr error
		stop   = make(chan struct{})
		polled = make(chan struct{})
	)
	restore = func() {
		once.Do(func() {
			err := os.WriteFile(maxQueuedEvents, old, 0o644)
			errMu.Lock()
			resErr = err
			errMu.Unlock()
			close(stop)
		})
	}
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if fanotifyGroups() >= before+2 {
				restore()
				return
			}
		}
	}()
	t.Cleanup(func() {
		restore()
		<-polled
		errMu.Lock()
		defer errMu.Unlock()
		if resErr != nil {
			t.Errorf("restore %s to %s: %v", maxQueuedEvents, strings.TrimSpace(string(old)), resErr)
		}
	})
	return restore
}

// fanotifyGroups counts this process's fanotify descriptors.
func fanotifyGroups() int {
	fds, err := testutil.OpenFDs()
	if err != nil {
		return 0
	}
	n := 0
	for _, target := range fds {
		if target == "anon_inode:[fanotify]" {
			n++
		}
	}
	return n
}

// TestQueueOverflowNeverLetsAnOpenThroughSerial (case 5): while the agent cannot
// read its queue, more openers wait than the kernel's queue limit would
// hold; none of them gets the file. Before the fix the agent's group had
// the limit (16,384 by default; 8 here, set while the agent starts), the
// kernel let the opener that did not fit through, and 18,500 looping
// threads read the secret. The reader is stalled by holding the identity
// index's lock, which it takes for the first event of another process.
func TestQueueOverflowNeverLetsAnOpenThroughSerial(t *testing.T) {
	testutil.SerialOnly(t)
	const limit = 8
	restore := lowerQueueLimit(t, limit)
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	restore()
	secret := h.path("secret/plan.txt")

	// The reader is handed at most one queue's worth of events before it
	// stalls on the first, so 2*limit+2 openers overflow a bounded queue.
	h.a.index.mu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			h.a.index.mu.Unlock()
		}
	}
	defer unlock() // before t.Cleanup stops the openers and the agent
	var ops []*testutil.Opener
	for i := range 2*limit + 2 {
		o := testutil.StartOpener(t, secret)
		ops = append(ops, o)
		if !o.WaitBlockedOrDone(t) {
			unlock()
			t.Fatalf("opener %d of %d finished while the agent could not answer: %v %q (let through by a queue overflow)",
				i+1, 2*limit+2, o.Err(), o.Out())
		}
	}
	unlock()
	for i, o := range ops {
		<-o.Done()
		mustDeny(t, o.Out(), o.Err(), fmt.Sprintf("opener %d", i+1))
	}
	if n := h.a.stats.overflows.Load(); n != 0 {
		t.Errorf("%d queue overflows reported, want none", n)
	}
}

func identity(t *testing.T, path string) (dev, ino uint64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Dev), st.Ino
}

// syncNames returns once the name watcher has handled every name change
// made before the call: it creates a file in the protected place and waits
// until the index has learned it, which the watcher does in order.
func (h *harness) syncNames(t *testing.T) {
	t.Helper()
	if h.a.backend == config.BackendBPF {
		return // the kernel keeps files by identity itself, at the rename
	}
	f, err := os.CreateTemp(h.path("secret"), "sync-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev, ino := identity(t, f.Name())
	waitFor(t, func() bool {
		_, ok := h.a.index.lookup(dev, ino)
		return ok
	}, "the name watcher to catch up")
}

// renameOut moves the protected file out to an unprotected directory of
// the same filesystem and checks that it is still protected.
func (h *harness) renameOut(t *testing.T) string {
	t.Helper()
	moved := h.path("public/moved-out.txt")
	if err := os.Rename(h.path("secret/plan.txt"), moved); err != nil {
		t.Fatal(err)
	}
	h.syncNames(t)
	out, err := run(t, "/", "cat", moved)
	mustDeny(t, out, err, "cat of the renamed-out file")
	return moved
}

func (h *harness) stillProtected(t *testing.T, moved, after string) {
	t.Helper()
	out, err := run(t, "/", "cat", moved)
	mustDeny(t, out, err, "cat of the renamed-out file after "+after)
	out, err = run(t, "/", "head", moved)
	mustAllow(t, out, err, "head of the renamed-out file after "+after)
	if err == nil && out != "the plan\n" {
		t.Errorf("head printed %q", out)
	}
}

// TestRenamedOutStaysProtectedAfterReload (case 8): a protected file
// renamed out of the protected tree stays protected (README, "Identity,
// not names") after a policy reload walks the roots again. It used to be
// protected only until then: the walk did not find it, and cat read it.
func TestRenamedOutStaysProtectedAfterReload(t *testing.T) {
	forBackends(t, testRenamedOutStaysProtectedAfterReload)
}

func testRenamedOutStaysProtectedAfterReload(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)
	moved := h.renameOut(t)
	gen := h.a.Status().Policy.Generation
	// The same policy in a different text: a new hash, so a new walk.
	if err := os.WriteFile(h.policy, []byte(policyFor(h.fs, "")+"# reloaded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if g := h.a.Status().Policy.Generation; g != gen+1 {
		t.Fatalf("generation %d after the reload, want %d: nothing was walked", g, gen+1)
	}
	h.stillProtected(t, moved, "a reload")
}

// overflowNames overflows the name watcher's queue: it holds the index's
// lock, which the watcher takes for its first event about a protected
// file, and renames a protected file to a new name limit+1000 times (each
// rename queues one new event: its MovedFrom is merged into the queued
// MovedTo of the same name, child and process; the watcher has read at
// most one buffer, under 1,000 events, before it stalls). during runs
// while the queue is full, so that the events of what it does are lost.
// It returns once the watcher has handled the overflow (and the walk it
// makes) and everything before it.
func (h *harness) overflowNames(t *testing.T, limit int, during func()) {
	t.Helper()
	churn := h.path("secret/churn-0")
	if err := os.WriteFile(churn, []byte("churn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.a.stats.overflows.Load()
	h.a.index.mu.Lock()
	for i := range limit + 1000 {
		next := h.path("secret/churn-" + strconv.Itoa(i+1))
		if err := os.Rename(churn, next); err != nil {
			h.a.index.mu.Unlock()
			t.Fatal(err)
		}
		churn = next
	}
	if during != nil {
		during()
	}
	h.a.index.mu.Unlock()
	waitFor(t, func() bool { return h.a.stats.overflows.Load() > before }, "the name watcher's queue to overflow")
	h.syncNames(t)
}

// TestRenamedOutStaysProtectedAfterNameWatchOverflow (case 8): the same
// after the walk that a queue overflow of the name watcher makes, which an
// unprivileged user can cause with renames of their own.
func TestRenamedOutStaysProtectedAfterNameWatchOverflow(t *testing.T) {
	limit := queueLimit(t) // the watcher keeps the limit it was created with
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	moved := h.renameOut(t)
	h.overflowNames(t, limit, nil)
	h.stillProtected(t, moved, "a name-watch overflow")
}

// TestRenamedOutDuringNameWatchOverflowStaysProtected (case 8): the rename
// is made while the watcher's queue is full, so its events are lost and
// the walk after the overflow cannot tell a renamed file from a deleted
// one: it is kept, unverified.
func TestRenamedOutDuringNameWatchOverflowStaysProtected(t *testing.T) {
	limit := queueLimit(t)
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat of the protected file")
	moved := h.path("public/moved-out.txt")
	h.overflowNames(t, limit, func() {
		if err := os.Rename(h.path("secret/plan.txt"), moved); err != nil {
			t.Error(err)
		}
	})
	h.stillProtected(t, moved, "a rename lost in a name-watch overflow")
}
