package fanotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// maxQueuedEvents is the kernel's queue limit for fanotify groups created
// without FAN_UNLIMITED_QUEUE.
const maxQueuedEvents = "/proc/sys/fs/fanotify/max_queued_events"

// withQueueLimit sets max_queued_events to n while fn runs and restores it
// before returning. The sysctl is global: every group created meanwhile on
// the machine gets the small queue, so fn must do nothing but create the
// group under test. The kernel copies the limit into a group when it
// creates it: TestUnlimitedQueueNeverLetsAnOpenThroughSerial restores the sysctl
// before any open, and its bounded group still overflows at the lowered
// limit.
func withQueueLimit(t *testing.T, n int, fn func()) {
	t.Helper()
	old, err := os.ReadFile(maxQueuedEvents)
	if err != nil {
		t.Skipf("queue limit unknown: %v", err)
	}
	if err := os.WriteFile(maxQueuedEvents, []byte(strconv.Itoa(n)), 0o644); err != nil {
		t.Fatalf("lower %s: %v", maxQueuedEvents, err)
	}
	defer func() {
		if err := os.WriteFile(maxQueuedEvents, old, 0o644); err != nil {
			t.Errorf("restore %s to %s: %v", maxQueuedEvents, strings.TrimSpace(string(old)), err)
		}
	}()
	fn()
}

// TestUnlimitedQueueNeverLetsAnOpenThroughSerial: with a queue limit of 4 and
// nobody reading, a bounded group lets the fifth opener through (the kernel
// fails open, and the limit is the one in force when the group was
// created, not the sysctl's value now), an unlimited group keeps every
// opener waiting until it is answered (issue #17, case 5).
func TestUnlimitedQueueNeverLetsAnOpenThroughSerial(t *testing.T) {
	testutil.SerialOnly(t)
	const limit, openers = 4, 7
	for _, unlimited := range []bool{false, true} {
		t.Run(fmt.Sprintf("unlimited=%v", unlimited), func(t *testing.T) {
			testutil.RequireFanotify(t)
			testutil.CheckFDLeaks(t)
			dir := testutil.MountTmpfs(t)
			secret := dir + "/secret"
			if err := os.WriteFile(secret, []byte("the secret\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var l *Listener
			withQueueLimit(t, limit, func() {
				var err error
				l, err = Open(Options{UnlimitedQueue: unlimited})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
			})
			// Closing allows whatever is still pending, on every path.
			t.Cleanup(func() { l.Close() })
			if got := l.Features().UnlimitedQueue; got != unlimited {
				t.Errorf("Features().UnlimitedQueue = %v, want %v", got, unlimited)
			}
			if err := l.MarkMount(dir, OpenPerm); err != nil {
				t.Fatal(err)
			}
			// Nothing reads: every open waits in the kernel's queue. One
			// opener at a time, each until it waits or has exited.
			var ops []*testutil.Opener
			through := -1
			for i := range openers {
				o := testutil.StartOpener(t, secret)
				ops = append(ops, o)
				if !o.WaitBlockedOrDone(t) {
					through = i
					break
				}
			}
			if !unlimited {
				if through != limit || ops[through].Err() != nil || ops[through].Out() != "the secret\n" {
					t.Fatalf("bounded queue of %d: opener %d got through (%v, %q), want opener %d let through by overflow",
						limit, through, errOf(ops, through), outOf(ops, through), limit)
				}
				evs := readPerm(t, l, limit)
				for i := range evs {
					l.Respond(evs[i].Fd, false)
				}
				closeAll(evs)
				return
			}
			if through >= 0 {
				t.Fatalf("unlimited queue: opener %d got through while nobody answered: %v %q", through, ops[through].Err(), ops[through].Out())
			}
			evs := readPerm(t, l, openers)
			for i := range evs {
				if err := l.Respond(evs[i].Fd, false); err != nil {
					t.Errorf("Respond: %v", err)
				}
			}
			closeAll(evs)
			for i, o := range ops {
				<-o.Done()
				if o.Err() == nil || !strings.Contains(o.Out(), "Operation not permitted") {
					t.Errorf("opener %d: %v %q, want it denied", i, o.Err(), o.Out())
				}
			}
		})
	}
}

func errOf(ops []*testutil.Opener, i int) error {
	if i < 0 {
		return errors.New("none")
	}
	return ops[i].Err()
}

func outOf(ops []*testutil.Opener, i int) string {
	if i < 0 {
		return ""
	}
	return ops[i].Out()
}
