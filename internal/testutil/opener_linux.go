package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Opener is a client that opens a file once (cat) without being waited
// for, so that a test can hold many opens waiting for a fanotify answer;
// it is killed by its PID in t.Cleanup if it still runs.
type Opener struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// StartOpener starts `cat path`.
func StartOpener(t testing.TB, path string) *Opener {
	t.Helper()
	o := &Opener{cmd: exec.Command("cat", path), done: make(chan struct{})}
	o.cmd.Stdout, o.cmd.Stderr = &o.out, &o.out
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := o.cmd.Wait()
		o.mu.Lock()
		o.err = err
		o.mu.Unlock()
		close(o.done)
	}()
	t.Cleanup(func() {
		select {
		case <-o.done:
		default:
			_ = o.cmd.Process.Kill() // the wait for an answer is killable
			<-o.done
		}
	})
	return o
}

// Done is closed when the opener has exited.
func (o *Opener) Done() <-chan struct{} { return o.done }

// Err is how the opener exited; valid once Done is closed.
func (o *Opener) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Out is what the opener printed; valid once Done is closed.
func (o *Opener) Out() string {
	<-o.done
	return o.out.String()
}

// WaitBlockedOrDone waits until the opener sleeps in fanotify waiting for
// an answer (its wchan names a fanotify function), or has exited, and
// reports which. The bound only keeps a broken test from hanging.
func (o *Opener) WaitBlockedOrDone(t testing.TB) (blocked bool) {
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
