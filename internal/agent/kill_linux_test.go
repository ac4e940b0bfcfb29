package agent

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// TestHelperAgent runs an agent whose decisions never finish, as a child
// process of TestSIGKILLLeavesNoProcessStuck.
func TestHelperAgent(t *testing.T) {
	pol := os.Getenv("DRMFILTER_AGENT_POLICY")
	if pol == "" {
		t.Skip("helper process only")
	}
	cfg := config.Default()
	cfg.Policies = []string{pol}
	cfg.Audit.File, cfg.MetricsAddress, cfg.StatusSocket = "", "", ""
	cfg.Deadline = time.Minute
	env := environ.Report{Hypervisor: "none", Cloud: "none", Container: "none"}
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Env: &env,
		decideHook: func() { select {} }})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for !a.ready.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		os.Stdout.WriteString("agent-ready\n")
	}()
	_ = a.Run(context.Background())
}

func TestSIGKILLLeavesNoProcessStuck(t *testing.T) {
	testutil.RequireFanotify(t)
	fs := testutil.MountTmpfs(t)
	if err := os.Mkdir(filepath.Join(fs, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(fs, "secret", "plan.txt")
	if err := os.WriteFile(secret, []byte("the plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(pol, []byte(policyFor(fs, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := exec.Command(os.Args[0], "-test.run=^TestHelperAgent$")
	agent.Env = append(os.Environ(), "DRMFILTER_AGENT_POLICY="+pol)
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			agent.Process.Kill()
		}
		agent.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "agent-ready") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the agent exited before it was ready")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent was not ready within 20s")
	}

	// Clients whose opens the stalled agent never answers.
	const clients = 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, clients)
	var cmds []*exec.Cmd
	for range clients {
		c := exec.CommandContext(ctx, "cat", secret)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		go func() { done <- c.Wait() }()
	}
	// They are waiting on the agent (none can finish while it stalls).
	select {
	case err := <-done:
		t.Fatalf("a client finished while the agent stalled: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	for i := range clients {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("client %d after the agent was killed: %v", i, err)
			}
		case <-ctx.Done():
			for _, c := range cmds {
				c.Process.Kill()
			}
			t.Fatal("clients still stuck after the agent was killed")
		}
	}
}
