package fanotify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

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

// opener is a child process that opens a file once (cat), stopped by its
// PID in t.Cleanup if it is still running.
type opener struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func startOpener(t *testing.T, path string) *opener {
	t.Helper()
	o := &opener{cmd: exec.Command("cat", path), done: make(chan struct{})}
	o.cmd.Stdout, o.cmd.Stderr = &o.out, &o.out
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		o.err = o.cmd.Wait()
		close(o.done)
	}()
	t.Cleanup(func() {
		select {
		case <-o.done:
		default:
			o.cmd.Process.Kill() // by PID; the wait for an answer is killable
			<-o.done
		}
	})
	return o
}

// waitBlockedOrDone waits until the opener sleeps in fanotify, waiting for
// an answer (its wchan names a fanotify function), or has exited; it reports
// which. The bound only keeps a broken test from hanging.
func (o *opener) waitBlockedOrDone(t *testing.T) (blocked bool) {
	t.Helper()
	wchan := fmt.Sprintf("/proc/%d/wchan", o.cmd.Process.Pid)
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
		select {
		case <-o.done:
			return false
		default:
		}
		if b, err := os.ReadFile(wchan); err == nil && bytes.HasPrefix(b, []byte("fanotify")) {
			return true
		}
	}
	t.Fatalf("opener %d neither waited for fanotify nor exited", o.cmd.Process.Pid)
	return false
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
			var ops []*opener
			through := -1
			for i := range openers {
				o := startOpener(t, secret)
				ops = append(ops, o)
				if !o.waitBlockedOrDone(t) {
					through = i
					break
				}
			}
			if !unlimited {
				if through != limit || ops[through].err != nil || ops[through].out.String() != "the secret\n" {
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
				t.Fatalf("unlimited queue: opener %d got through while nobody answered: %v %q", through, ops[through].err, ops[through].out.String())
			}
			evs := readPerm(t, l, openers)
			for i := range evs {
				if err := l.Respond(evs[i].Fd, false); err != nil {
					t.Errorf("Respond: %v", err)
				}
			}
			closeAll(evs)
			for i, o := range ops {
				<-o.done
				if o.err == nil || !strings.Contains(o.out.String(), "Operation not permitted") {
					t.Errorf("opener %d: %v %q, want it denied", i, o.err, o.out.String())
				}
			}
		})
	}
}

func errOf(ops []*opener, i int) error {
	if i < 0 {
		return errors.New("none")
	}
	return ops[i].err
}

func outOf(ops []*opener, i int) string {
	if i < 0 {
		return ""
	}
	return ops[i].out.String()
}
