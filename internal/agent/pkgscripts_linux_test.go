package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// TestPackageScripts runs the real drmfilter command as the service does
// (pinned and protecting itself, with the package's paths and defaults)
// and the package's pre-remove script as dpkg does on an upgrade and on a
// removal: the upgrade hands the programs to the file installed by rename,
// with no moment unenforced, and the removal leaves no programs, pins or
// agent. In the guest only: it uses the machine's own paths (/usr/bin,
// /etc/drmfilter, /run/drmfilter, /sys/fs/bpf).
func TestPackageScripts(t *testing.T) {
	t.Run(config.BackendBPF, func(t *testing.T) {
		if !guest.InGuest() {
			t.Skip("runs in the qemu guest only (TestBehaviourInGuest): it installs at the machine's own paths")
		}
		testPackageScripts(t)
	})
}

// cliAgent is one `drmfilter run` process.
type cliAgent struct {
	cmd    *exec.Cmd
	exited chan error
}

func (c *cliAgent) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		t.Fatalf("%s: the agent (pid %d) did not exit within a minute", what, c.cmd.Process.Pid)
	}
}

func testPackageScripts(t *testing.T) {
	const cli = "/usr/bin/drmfilter"
	const script = "/work/pkg-scripts/preremove.sh"
	for _, p := range []string{cli, script} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v (TestBehaviourInGuest stages it)", p, err)
		}
	}
	fs := testutil.MountTmpfs(t)
	if err := os.Mkdir(filepath.Join(fs, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(fs, "secret", "plan.txt")
	if err := os.WriteFile(secret, []byte("the plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/etc/drmfilter/policies", "/var/log/drmfilter"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile("/etc/drmfilter/policies/p.yaml", []byte(policyFor(fs, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/drmfilter/config.yaml", []byte("backend: bpf\ncri: {disabled: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var running *cliAgent
	t.Cleanup(func() {
		// Whatever is left: unloaded through the agent, or by the
		// trusted executable itself.
		if bpflsm.Pinned(config.Default().BPF.PinPath) {
			_ = exec.Command(cli, "stop", "--unload").Run()
		}
		if running != nil {
			running.wait(t, "cleanup")
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("the agents' log:\n%s", b)
		}
	})
	start := func(what string) *cliAgent {
		t.Helper()
		cmd := exec.Command(cli, "run", "--config", "/etc/drmfilter/config.yaml")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		a := &cliAgent{cmd: cmd, exited: make(chan error, 1)}
		go func() { a.exited <- cmd.Wait() }()
		deadline := time.Now().Add(2 * time.Minute) // a bound against a hang (emulation)
		for exec.Command(cli, "status", "--check", "ready").Run() != nil {
			select {
			case err := <-a.exited:
				b, _ := os.ReadFile(logf.Name())
				t.Fatalf("%s: the agent exited (%v) before it was ready:\n%s", what, err, b)
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not ready within two minutes", what)
			}
		}
		running = a
		return a
	}
	protected := func(what string) {
		t.Helper()
		out, err := run(t, "/", "cat", secret)
		mustDeny(t, out, err, what+": cat")
		out, err = run(t, "/", "head", secret)
		mustAllow(t, out, err, what+": head")
	}
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("sh", append([]string{script}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("preremove.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	a := start("the first start")
	protected("the service running")
	if err := unix.Kill(a.cmd.Process.Pid, unix.SIGTERM); err == nil {
		t.Error("SIGTERM of the service's agent was not refused")
	}

	// An upgrade: prerm, then dpkg installs the new file by rename, then
	// postinst's try-restart (ExecStop: drmfilter stop; ExecStart).
	sh("upgrade", "1.1.0")
	staged := cli + ".dpkg-new"
	copyFile(t, cli, staged)
	if err := os.Chmod(staged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, cli); err != nil {
		t.Fatalf("dpkg's rename of the new executable: %v", err)
	}
	if out, err := exec.Command(cli, "stop").CombinedOutput(); err != nil {
		t.Fatalf("ExecStop (drmfilter stop): %v\n%s", err, out)
	}
	a.wait(t, "the upgrade's stop")
	protected("between the old agent and the new")
	a = start("the upgraded start")
	protected("after the upgrade")

	// A removal: prerm unloads and stops.
	sh("remove")
	a.wait(t, "the removal")
	running = nil
	if bpflsm.Pinned(config.Default().BPF.PinPath) {
		t.Error("the pins are still there after the package's removal")
	}
	out, err := run(t, "/", "cat", secret)
	mustAllow(t, out, err, "cat after the package's removal")
}
