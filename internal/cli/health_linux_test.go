package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/signs"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Issue #17, case 7: a user who listens on the metrics address first must
// not be able to answer for the agent. `drmfilter run` refuses to start
// when it cannot listen there, saying which address and why, and never
// starts enforcing.
func TestRunRefusesATakenMetricsAddress(t *testing.T) {
	testutil.RequireRoot(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	sock := filepath.Join(t.TempDir(), "status.sock")
	code, errOut := runExpectingRefusal(t, sock, "--policy", tmpfsPolicy(t), "--audit-file", "-", "--status-socket", sock,
		"--watch=false", "--metrics-address", addr)
	if code != exitcode.Failure {
		t.Errorf("exit %d, want %d", code, exitcode.Failure)
	}
	for _, want := range []string{addr + " is already in use by another process", "address already in use", "--metrics-address", `"-" to disable`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "drmfilter agent started") {
		t.Errorf("the agent started enforcing:\n%s", errOut)
	}
}

// The status socket is the health path, so `drmfilter run` refuses a
// socket directory that another user could write to (and so replace the
// agent's socket in).
func TestRunRefusesAStatusSocketDirectoryOthersCanWrite(t *testing.T) {
	testutil.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "status.sock")
	code, errOut := runExpectingRefusal(t, sock, "--policy", tmpfsPolicy(t), "--audit-file", "-", "--status-socket", sock,
		"--watch=false", "--metrics-address", "-")
	if code != exitcode.Failure {
		t.Errorf("exit %d, want %d", code, exitcode.Failure)
	}
	for _, want := range []string{"status socket " + sock, dir + " is writable by its group or others (mode 0777)", "--status-socket"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("the refused directory got a socket")
	}
}

// `drmfilter status --check` is the health check: it passes for a running,
// enforcing agent, and fails, saying why, once the agent stopped. The
// agent runs with the default settings while the test holds the old
// default metrics port, 127.0.0.1:9477: a squatter there neither keeps the
// agent from starting nor is asked.
func TestStatusCheckReportsTheRunningAgent(t *testing.T) {
	testutil.RequireFanotify(t)
	if squat, err := net.Listen("tcp", "127.0.0.1:9477"); err == nil {
		defer squat.Close()
	} else {
		t.Logf("127.0.0.1:9477 is already taken (%v): the agent must start all the same", err)
	}
	sock := filepath.Join(t.TempDir(), "status.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startRun(t, ctx, cancel, "--policy", tmpfsPolicy(t), "--audit-file", "-", "--status-socket", sock, "--watch=false")

	var code int
	var out, errOut string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, out, errOut = run(t, "status", "--check", "ready", "--socket", sock); code == exitcode.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --check ready: exit %d, stdout %q, stderr %q; agent log:\n%s", code, out, errOut, r.errOut.String())
		}
	}
	if want := fmt.Sprintf(", pid %d, ", os.Getpid()); !strings.HasPrefix(out, "ready: drmfilter ") || !strings.Contains(out, want) {
		t.Errorf("status --check ready printed %q", out)
	}
	if code, out, errOut := run(t, "status", "--check", "live", "--socket", sock); code != exitcode.OK {
		t.Errorf("status --check live: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = run(t, "status", "--check", "ready", "-o", "json", "--socket", sock)
	var st agent.Status
	if err := json.Unmarshal([]byte(out), &st); code != exitcode.OK || err != nil || !st.Ready {
		t.Errorf("status --check ready -o json: exit %d, %v, %q %q", code, err, out, errOut)
	}
	if log := r.errOut.String(); strings.Contains(log, "serving metrics") || strings.Contains(log, "metrics endpoint") {
		t.Errorf("the agent listened for metrics without being asked to:\n%s", r.errOut.String())
	}

	r.stop()
	for _, check := range []string{"live", "ready"} {
		code, out, errOut := run(t, "status", "--check", check, "--socket", sock)
		if code != exitcode.Failure || out != "" || !strings.Contains(errOut, "not "+check+": is the agent running?") {
			t.Errorf("status --check %s after the agent stopped: exit %d, stdout %q, stderr %q", check, code, out, errOut)
		}
	}
}

func TestStatusCheckWithoutAnAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, check := range []string{"live", "ready"} {
		code, out, errOut := run(t, "status", "--check", check, "--socket", sock)
		if code != exitcode.Failure || out != "" || !strings.Contains(errOut, "not "+check+": is the agent running?") {
			t.Errorf("--check %s: exit %d, stdout %q, stderr %q", check, code, out, errOut)
		}
	}
	if code, _, errOut := run(t, "status", "--check", "maybe", "--socket", sock); code != exitcode.Usage || !strings.Contains(errOut, `--check: "maybe" is not live or ready`) {
		t.Errorf("--check maybe: exit %d, stderr %q", code, errOut)
	}
}

// A process that is not the agent listens on the status socket path (here
// in a directory where another user could, as the agent would refuse to)
// and claims to be ready: the health check and `drmfilter status` see that
// it is not root, so not the agent, and do not believe it.
func TestStatusCheckRejectsAStatusSocketServedByAnotherUser(t *testing.T) {
	testutil.RequireRoot(t)
	sock := fakeStatusServer(t)
	for _, args := range [][]string{
		{"status", "--check", "ready"},
		{"status", "--check", "live"},
		{"status"},
		{"status", "-o", "json"},
	} {
		code, out, errOut := run(t, append(args, "--socket", sock)...)
		if code != exitcode.Failure || strings.Contains(out, "fake") || strings.Contains(out, "ready") ||
			!strings.Contains(errOut, sock+" is not served by the drmfilter agent: the process listening on it runs as uid 65534, and the agent runs as root") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// fakeStatusServer starts this test binary again as a process that runs as
// nobody (uid 65534) and answers every connection to the returned socket
// with a status that claims to be ready. The process is stopped at the
// end of the test.
func fakeStatusServer(t *testing.T) string {
	t.Helper()
	// The socket's directory must be reachable and writable by nobody.
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "status.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFakeStatusServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fakeSocketEnv+"="+sock)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{}) // stdout read to its end: Wait may close it
	t.Cleanup(func() {
		stdin.Close() // the process stops when its standard input closes
		<-drained
		if err := cmd.Wait(); err != nil {
			t.Errorf("fake status server: %v", err)
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "listening" {
			go func() {
				defer close(drained)
				_, _ = io.Copy(io.Discard, stdout)
			}()
			return sock
		}
	}
	close(drained)
	t.Fatalf("fake status server did not start: %v", sc.Err())
	return ""
}

const fakeSocketEnv = "DRMFILTER_TEST_FAKE_STATUS_SOCKET"

// TestFakeStatusServerProcess is not a test: it is the process that
// fakeStatusServer starts.
func TestFakeStatusServerProcess(t *testing.T) {
	sock := os.Getenv(fakeSocketEnv)
	if sock == "" {
		t.Skip("the process fakeStatusServer starts")
	}
	const nobody = 65534
	if err := syscall.Setgroups(nil); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setgid(nobody); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(`{"version":"fake","pid":1,"ready":true,"mode":"enforce"}` + "\n"))
			c.Close()
		}
	}()
	fmt.Println("listening")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ln.Close()
}

// tmpfsPolicy writes a policy that protects files on a tmpfs the test
// mounts, so that an agent that starts marks nothing else.
func tmpfsPolicy(t *testing.T) string {
	t.Helper()
	fs := testutil.MountTmpfs(t)
	pol := filepath.Join(t.TempDir(), "p.yaml")
	doc := fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: health-test}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - {name: nobody, operations: [open], effect: deny}
`, fs)
	if err := os.WriteFile(pol, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return pol
}

// runExpectingRefusal runs `drmfilter run args...` in-process and returns
// its exit code and standard error once it exits. Should the agent start
// instead (its status socket, sock, reports ready), the test stops it and
// fails.
func runExpectingRefusal(t *testing.T, sock string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"run"}, args...), Streams{In: strings.NewReader(""), Out: io.Discard, Err: &errOut})
	}()
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if st, err := agent.QueryStatus(ctx, sock); err == nil && st.Ready {
				close(ready)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	select {
	case code := <-done:
		return code, errOut.String()
	case <-ready:
		cancel()
		<-done
		t.Fatalf("drmfilter run %s started the agent instead of refusing to:\n%s", strings.Join(args, " "), errOut.String())
		return 0, ""
	}
}

// TestStatusShowsSigns: `drmfilter status` prints a SIGN line for what the
// agent found that root got around the programs (here: the record says
// pinned programs enforced in this boot and were never unloaded, and this
// start finds none, or a kernel without BPF LSM).
func TestStatusShowsSigns(t *testing.T) {
	testutil.RequireFanotify(t)
	dir := t.TempDir()
	record := filepath.Join(dir, "state", "enforcement.json")
	boot := signs.BootID()
	if err := signs.Write(record, signs.Record{BootID: boot, Kernel: "test", Backend: "bpf", Pinned: true, SelfProtect: true, Updated: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("bpf: {pinPath: %q, recordFile: %q}\n", filepath.Join(dir, "bpffs", "drmfilter"), record)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "status.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startRun(t, ctx, cancel, "--config", cfg, "--backend", "fanotify", "--policy", tmpfsPolicy(t), "--audit-file", "-",
		"--status-socket", sock, "--admin-socket", "-", "--watch=false")
	defer r.stop()
	var code int
	var out, errOut string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, out, errOut = run(t, "status", "--socket", sock); code == exitcode.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: exit %d, stdout %q, stderr %q; agent log:\n%s", code, out, errOut, r.errOut.String())
		}
	}
	if !strings.Contains(out, "SIGN booted-without-bpf-lsm at ") && !strings.Contains(out, "SIGN programs-removed at ") {
		t.Errorf("status shows no sign:\n%s", out)
	}
	if !strings.Contains(out, boot) {
		t.Errorf("the sign does not name the boot that enforced (%s):\n%s", boot, out)
	}
}
