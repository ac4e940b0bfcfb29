package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunEndToEnd runs `drmfilter run` as a user would (in-process, with
// its flags), on a tmpfs the test mounts: cat is denied and recorded on
// stdout, `drmfilter status` answers, SIGHUP reloads an edited policy, and
// cancelling stops the agent.
func TestRunEndToEnd(t *testing.T) {
	testutil.RequireFanotify(t)
	fs := testutil.MountTmpfs(t)
	if err := os.MkdirAll(filepath.Join(fs, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(fs, "secret", "plan.txt")
	if err := os.WriteFile(secret, []byte("plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policyText := func(allowed string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: run-test}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - {name: allowed, operations: [open], subjects: {executables: [%q]}, effect: allow}
    - {name: others, operations: [open], effect: deny}
`, fs, allowed)
	}
	pol := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(pol, []byte(policyText("/usr/bin/head")), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "status.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startRun(t, ctx, cancel, "--policy", pol, "--audit-file", "-", "--audit-stdout",
		"--metrics-address", "-", "--status-socket", sock, "--watch=false")
	out, errOut := &r.out, &r.errOut
	var st agent.Status
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if st, err = agent.QueryStatus(ctx, sock); err == nil && st.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not ready: %v\n%s", err, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cat := func() error { return catFile(secret) }
	if err := cat(); err == nil {
		t.Fatal("cat of the protected file succeeded")
	}
	// Edit the policy to allow cat, and reload with SIGHUP as an operator
	// (or systemd's ExecReload) would.
	if err := os.WriteFile(pol, []byte(policyText("/usr/bin/cat")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		if s, err := agent.QueryStatus(ctx, sock); err == nil && s.Policy.Generation == st.Policy.Generation+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload the policy:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cat(); err != nil {
		t.Fatalf("cat after the reload: %v", err)
	}
	r.stop()
	if !strings.Contains(out.String(), `"decision":"deny","mode":"enforce","policy":"run-test","rule":"others"`) {
		t.Errorf("no deny record on stdout:\n%s", out.String())
	}
	for _, want := range []string{"drmfilter agent started", "SIGHUP: reloading policies", "policies reloaded", "drmfilter agent stopped"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// running is a `drmfilter run` started in-process by startRun.
type running struct {
	out, errOut lockedBuffer
	stop        func() // cancels the run and checks that it exits 0; idempotent
}

// startRun runs Main("run", args...) until cancel is called, through
// r.stop or at the end of the test.
func startRun(t *testing.T, ctx context.Context, cancel context.CancelFunc, args ...string) *running {
	t.Helper()
	r := &running{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"run"}, args...), Streams{In: strings.NewReader(""), Out: &r.out, Err: &r.errOut})
	}()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run exited %d: %s", code, r.errOut.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run did not stop")
		}
	}
	t.Cleanup(r.stop)
	return r
}

// catFile runs cat on path, as a client of the agent would.
func catFile(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "cat", path).Run()
}
