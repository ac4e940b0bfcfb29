package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
)

// notifySocket is a fake systemd notify socket.
func notifySocket(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, c
}

// next returns the next notification, or "" if none comes within d.
func next(t *testing.T, c *net.UnixConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 256)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func idleAgent(t *testing.T) *Agent {
	t.Helper()
	cfg := config.Default()
	cfg.Policies = []string{filepath.Join(t.TempDir(), "none.yaml")}
	if err := os.WriteFile(cfg.Policies[0], []byte(policyFor("/nonexistent", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Audit.File, cfg.MetricsAddress, cfg.StatusSocket = "", "", ""
	cfg.CRI.Disabled = true
	env := &environ.Report{Hypervisor: "kvm", Cloud: "none", Container: "none"}
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	a.ready.Store(true) // as Run does once it enforces
	return a
}

// TestWatchdogHelperProcess is the agent process of TestStoppedAgentStarvesTheWatchdog.
func TestWatchdogHelperProcess(t *testing.T) {
	if os.Getenv("DRMFILTER_WATCHDOG_HELPER") != "1" {
		t.Skip("helper process of TestStoppedAgentStarvesTheWatchdog")
	}
	idleAgent(t).NotifySystemd(context.Background())
}

// TestStoppedAgentStarvesTheWatchdog: under systemd, the agent says when
// it is ready and feeds the watchdog; stopped with SIGSTOP it feeds it no
// more, which is how systemd learns to kill and restart it (a stopped
// agent would otherwise hold every covered open indefinitely).
func TestStoppedAgentStarvesTheWatchdog(t *testing.T) {
	sock, c := notifySocket(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogHelperProcess$")
	cmd.Env = append(os.Environ(), "DRMFILTER_WATCHDOG_HELPER=1", "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=100000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if m := next(t, c, time.Minute); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	for range 3 {
		if m := next(t, c, time.Minute); m != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", m)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Wait until the kernel reports it stopped, then drain what it sent
	// before.
	waitFor(t, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err == nil && strings.Contains(string(b), ") T ")
	}, "the helper to be stopped")
	for next(t, c, 10*time.Millisecond) != "" {
	}
	// Ten watchdog intervals: a running agent would have fed it 20 times.
	if m := next(t, c, time.Second); m != "" {
		t.Fatalf("a stopped agent sent %q", m)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if m := next(t, c, time.Minute); m != "WATCHDOG=1" {
		t.Fatalf("after SIGCONT: %q, want WATCHDOG=1", m)
	}
}

// TestNoSystemdNoNotifications: outside systemd the agent sends nothing
// and NotifySystemd returns.
func TestNoSystemdNoNotifications(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	done := make(chan struct{})
	go func() { idleAgent(t).NotifySystemd(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("NotifySystemd did not return without a notify socket")
	}
}
