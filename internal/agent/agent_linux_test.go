package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// syncBuffer collects audit lines from the writer goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) records(t *testing.T) []audit.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

type harness struct {
	t      *testing.T
	fs     string // the tmpfs the test mounted: the only thing marked
	policy string // policy file (not on the tmpfs)
	a      *Agent
	audit  *syncBuffer
	stop   func()
}

// policyFor writes a policy protecting <fs>/secret/** in which only head
// may open, nobody may execute, and cat may not read (if read is set).
func policyFor(fs string, extra string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: secrets}
spec:
  files:
    paths: ["%s/secret/**"]
  rules:
    - name: head-may-open
      operations: [open]
      subjects: {executables: [%q]}
      effect: allow
    - name: no-exec
      operations: [exec]
      effect: deny
    - name: others-may-not-open
      operations: [open]
      effect: deny
%s`, fs, realPath("head"), extra)
}

func realPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return "/usr/bin/" + name
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// startAgent mounts a tmpfs, writes a policy and runs an agent on it until
// the test ends.
func startAgent(t *testing.T, policyText func(fs string) string, mutate func(*config.Config), opts ...func(*Options)) *harness {
	t.Helper()
	return startAgentOn(t, config.BackendFanotify, policyText, mutate, opts...)
}

// startAgentOn is startAgent with the given backend.
func startAgentOn(t *testing.T, backend string, policyText func(fs string) string, mutate func(*config.Config), opts ...func(*Options)) *harness {
	t.Helper()
	testutil.RequireFanotify(t)
	h := &harness{t: t, fs: testutil.MountTmpfs(t), audit: &syncBuffer{}}
	for _, d := range []string{"secret", "public"} {
		if err := os.Mkdir(filepath.Join(h.fs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(h.fs, "secret", "plan.txt"), []byte("the plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.fs, "public", "readme.txt"), []byte("public\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.policy = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(h.policy, []byte(policyText(h.fs)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Policies = []string{h.policy}
	cfg.Audit.File = ""
	cfg.MetricsAddress = ""
	cfg.StatusSocket = ""
	cfg.Backend = backend
	// Each test's programs go with its agent (the tamper tests pin).
	cfg.BPF.PinPath, cfg.BPF.SelfProtect = "", false
	if mutate != nil {
		mutate(&cfg)
	}
	env := environ.Report{Hypervisor: "kvm", Cloud: "none", Container: "none"}
	o := Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(testLogOut(), &slog.HandlerOptions{Level: slog.LevelDebug})), Env: &env, AuditSinks: []audit.Sink{audit.NewStreamSink(h.audit)}}
	for _, f := range opts {
		f(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { stopAgent(t, cancel, done) }) }
	t.Cleanup(h.stop)
	// A bound against a hang, not a speed check: loading the bpf
	// backend's programs under emulation (the qemu guest) takes seconds.
	deadline := time.Now().Add(time.Minute)
	for !a.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("agent not ready after a minute")
		}
		select {
		case err := <-done:
			t.Fatalf("agent stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return h
}

func stopAgent(t *testing.T, cancel func(), done chan error) {
	{
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("agent did not stop within a minute")
		}
	}
}

func (h *harness) path(p string) string { return filepath.Join(h.fs, p) }

// run runs a client program with a timeout; the process is killed by the
// context if it hangs.
func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v hung: %s", name, args, out)
	}
	return string(out), err
}

func mustDeny(t *testing.T, out string, err error, what string) {
	t.Helper()
	if err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("%s: want EPERM, got err=%v out=%q", what, err, out)
	}
}

func mustAllow(t *testing.T, out string, err error, what string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: want success, got err=%v out=%q", what, err, out)
	}
}

func TestOpenDecidedByPolicy(t *testing.T) { forBackends(t, testOpenDecidedByPolicy) }

func testOpenDecidedByPolicy(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat of a protected file")
	out, err = run(t, "/", "head", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "head of a protected file")
	if out != "the plan\n" {
		t.Errorf("head printed %q", out)
	}
	out, err = run(t, "/", "cat", h.path("public/readme.txt"))
	mustAllow(t, out, err, "cat of an unprotected file")

	h.stop() // flush the audit log
	var deny *audit.Record
	for _, r := range h.audit.records(t) {
		if r.Decision == "deny" {
			deny = &r
		}
	}
	if deny == nil {
		t.Fatalf("no deny record in %+v", h.audit.records(t))
	}
	if deny.Policy != "secrets" || deny.Rule != "others-may-not-open" || deny.Path != h.path("secret/plan.txt") ||
		deny.Exe != realPath("cat") || deny.Operation != "open" || deny.Ino == 0 || deny.PID == 0 || deny.Env != "kvm/none/none" {
		t.Errorf("deny record: %+v", *deny)
	}
}

func TestExecDecidedByPolicy(t *testing.T) { forBackends(t, testExecDecidedByPolicy) }

func testExecDecidedByPolicy(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string {
		return strings.Replace(policyFor(fs, ""), `    - name: no-exec
      operations: [exec]
      effect: deny`, fmt.Sprintf(`    - name: sh-may-exec
      operations: [exec]
      subjects: {executables: [%q]}
      effect: allow
    - name: no-exec
      operations: [exec]
      effect: deny`, realPath("sh")), 1)
	}, nil)
	data, err := os.ReadFile(realPath("true"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"secret/true", "public/true"} {
		if err := os.WriteFile(h.path(p), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The subject of an exec is the process calling execve: env here.
	out, err := run(t, "/", "env", h.path("secret/true"))
	mustDeny(t, out, err, "env executing a protected binary")
	out, err = run(t, "/", "sh", "-c", h.path("secret/true"))
	mustAllow(t, out, err, "sh executing a protected binary")
	out, err = run(t, "/", "env", h.path("public/true"))
	mustAllow(t, out, err, "executing an unprotected copy")
}

func TestPolicyFileChangesAreReloaded(t *testing.T) { forBackends(t, testPolicyFileChangesAreReloaded) }

func testPolicyFileChangesAreReloaded(t *testing.T, backend string) {
	// The policy directory is laid out like a Kubernetes ConfigMap volume:
	// the visible file is a symlink through ..data, which an update swaps
	// atomically to a new timestamped directory.
	dir := t.TempDir()
	var fs string
	h := startAgentOn(t, backend, func(f string) string {
		fs = f
		writeConfigMap(t, dir, "v1", policyFor(f, ""))
		return policyFor(f, "")
	}, func(c *config.Config) { c.Policies = []string{dir} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchDone := make(chan error, 1)
	go func() { watchDone <- h.a.WatchPolicies(ctx) }()
	defer func() { cancel(); <-watchDone }()
	select {
	case <-h.a.PolicyWatchReady():
	case err := <-watchDone:
		t.Fatalf("WatchPolicies returned before its watches were ready: %v", err)
	}
	if !h.a.Status().Policy.Watched {
		t.Error("status does not report the policy watch")
	}
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat before the update")

	catOK := strings.Replace(policyFor(fs, ""), realPath("head"), realPath("cat"), 1)
	writeConfigMap(t, dir, "v2", catOK)
	waitFor(t, func() bool { return h.a.Status().Policy.Generation == 2 }, "the ConfigMap update to be loaded")
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "cat after the update")

	writeConfigMap(t, dir, "v3", "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: broken}\nspec: {files: {}}\n")
	waitFor(t, func() bool { return h.a.Status().ReloadFailure == 1 }, "the broken update to be rejected")
	if g := h.a.Status().Policy.Generation; g != 2 {
		t.Errorf("generation %d after a rejected update, want 2", g)
	}
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "cat after a rejected update")
}

// TestChangeBeforeTheWatchIsNotLost: a policy update written after the
// agent loaded its policies but before its watch existed is in force as
// soon as the watch reports ready, with no further event.
func TestChangeBeforeTheWatchIsNotLost(t *testing.T) {
	dir := t.TempDir()
	var fs string
	h := startAgent(t, func(f string) string {
		fs = f
		writeConfigMap(t, dir, "v1", policyFor(f, ""))
		return policyFor(f, "")
	}, func(c *config.Config) { c.Policies = []string{dir} })
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat before the update")
	writeConfigMap(t, dir, "v2", strings.Replace(policyFor(fs, ""), realPath("head"), realPath("cat"), 1))
	if g := h.a.Status().Policy.Generation; g != 1 {
		t.Fatalf("generation %d before the watch started, want 1", g)
	}

	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- h.a.WatchPolicies(ctx) }()
	defer func() { cancel(); <-watchDone }()
	select {
	case <-h.a.PolicyWatchReady():
	case err := <-watchDone:
		t.Fatalf("WatchPolicies returned before its watches were ready: %v", err)
	}
	if g := h.a.Status().Policy.Generation; g != 2 {
		t.Fatalf("generation %d when the watch is ready, want 2: the update made before it was lost", g)
	}
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "cat after the update")
}

// writeConfigMap updates dir the way the kubelet updates a ConfigMap
// volume: a new ..<version> directory, a ..data_tmp symlink renamed over
// ..data, and policy.yaml -> ..data/policy.yaml.
func writeConfigMap(t *testing.T, dir, version, text string) {
	t.Helper()
	vdir := filepath.Join(dir, ".."+version)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, "policy.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(".."+version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "policy.yaml")
	if _, err := os.Lstat(link); os.IsNotExist(err) {
		if err := os.Symlink("..data/policy.yaml", link); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadAccessDenied(t *testing.T) { forBackends(t, testReadAccessDenied) }

func testReadAccessDenied(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: no-reading}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - {name: cat-may-not-read, operations: [read], subjects: {executables: [%q]}, effect: deny}
`, fs, realPath("cat"))
	}, nil)
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat reading a protected file")
	out, err = run(t, "/", "head", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "head reading a protected file")
}

func TestAuditModeDeniesNothingAndRecordsEverything(t *testing.T) {
	forBackends(t, testAuditModeDeniesNothingAndRecordsEverything)
}

func testAuditModeDeniesNothingAndRecordsEverything(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, func(c *config.Config) { c.Mode = "audit" })
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "cat in audit mode")
	h.stop()
	found := false
	for _, r := range h.audit.records(t) {
		if r.Decision == "would-deny" && r.Rule == "others-may-not-open" && r.Mode == "audit" && r.Exe == realPath("cat") {
			found = true
		}
	}
	if !found {
		t.Errorf("no would-deny record: %+v", h.audit.records(t))
	}
}

// TestOtherNamesOfAProtectedFile tries every way of reaching a protected
// file by another name.
func TestOtherNamesOfAProtectedFile(t *testing.T) { forBackends(t, testOtherNamesOfAProtectedFile) }

func testOtherNamesOfAProtectedFile(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)
	secret := h.path("secret/plan.txt")

	if err := os.Link(secret, h.path("public/hardlink.txt")); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "/", "cat", h.path("public/hardlink.txt"))
	mustDeny(t, out, err, "hard link")

	if err := os.Symlink(secret, h.path("public/symlink.txt")); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "/", "cat", h.path("public/symlink.txt"))
	mustDeny(t, out, err, "symlink")

	out, err = run(t, h.path("secret"), "cat", "plan.txt")
	mustDeny(t, out, err, "relative path from the working directory")

	out, err = run(t, "/", "cat", "/proc/self/root"+secret)
	mustDeny(t, out, err, "/proc/self/root path")

	out, err = run(t, "/", "sh", "-c", "cd "+h.path("secret")+" && cat /proc/self/cwd/plan.txt")
	mustDeny(t, out, err, "/proc/self/cwd path")

	bind := h.path("public/bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "/", "mount", "--bind", h.path("secret"), bind); err != nil {
		t.Fatalf("mount --bind: %v %s", err, out)
	}
	t.Cleanup(func() { run(t, "/", "umount", "-l", bind) })
	out, err = run(t, "/", "cat", filepath.Join(bind, "plan.txt"))
	mustDeny(t, out, err, "bind mount")

	if _, err := exec.LookPath("unshare"); err == nil {
		out, err = run(t, "/", "unshare", "-m", "--propagation", "private", "sh", "-c",
			"mkdir -p /tmp/drmfilter-ns && mount --bind "+h.path("secret")+" /tmp/drmfilter-ns && cat /tmp/drmfilter-ns/plan.txt")
		mustDeny(t, out, err, "another mount namespace")
	} else if testutil.InCI() {
		t.Error("unshare is missing")
	}

	out, err = run(t, "/", "env", "DRMFILTER_HANDLE_FILE="+secret, os.Args[0], "-test.run=^TestHelperOpenByHandle$")
	if err == nil || !strings.Contains(out, "operation not permitted") {
		t.Errorf("open_by_handle_at: want EPERM, got err=%v out=%q", err, out)
	}
	if !strings.Contains(out, "handle-open-failed") {
		t.Errorf("helper did not reach open_by_handle_at: %q", out)
	}
}

// TestHelperOpenByHandle is run as a child process by
// TestOtherNamesOfAProtectedFile: it opens the file named by
// DRMFILTER_HANDLE_FILE through name_to_handle_at and open_by_handle_at.
func TestHelperOpenByHandle(t *testing.T) {
	name := os.Getenv("DRMFILTER_HANDLE_FILE")
	if name == "" {
		t.Skip("helper process only")
	}
	if err := openByHandle(name); err != nil {
		fmt.Println("handle-open-failed:", err)
		os.Exit(1)
	}
	fmt.Println("handle-open-succeeded")
}

func TestFilesCreatedAndRenamedAfterStart(t *testing.T) {
	forBackends(t, testFilesCreatedAndRenamedAfterStart)
}

func testFilesCreatedAndRenamedAfterStart(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)

	// Created in the protected place after start: protected by its path.
	if err := os.WriteFile(h.path("secret/new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "/", "cat", h.path("secret/new.txt"))
	mustDeny(t, out, err, "file created after start")

	// Renamed out of the protected place: still the protected file.
	if err := os.Rename(h.path("secret/new.txt"), h.path("public/moved-out.txt")); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "/", "cat", h.path("public/moved-out.txt"))
	mustDeny(t, out, err, "file renamed out of the protected place")

	// Renamed into the protected place after an allowed open.
	if err := os.WriteFile(h.path("public/moving-in.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "/", "cat", h.path("public/moving-in.txt"))
	mustAllow(t, out, err, "unprotected file before the move")
	if err := os.Rename(h.path("public/moving-in.txt"), h.path("secret/moved-in.txt")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := run(t, "/", "cat", h.path("secret/moved-in.txt"))
		return err != nil
	}, "file renamed into the protected place to be denied")

	// Created in the protected place and hard-linked out before anyone
	// opened it: the link is the protected file.
	if err := os.WriteFile(h.path("secret/fresh.txt"), []byte("fresh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(h.path("secret/fresh.txt"), h.path("public/fresh-link.txt")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := run(t, "/", "cat", h.path("public/fresh-link.txt"))
		return err != nil
	}, "a hard link made before any open to be denied")

}

// waitFor polls cond for up to a minute: the bound only keeps a broken
// test from hanging (a correctness bound, not a speed target), and is
// generous because CI machines are shared and loaded.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("timed out waiting for %s", what)
}

func TestReloadSwapsPoliciesAndKeepsTheOldOnError(t *testing.T) {
	forBackends(t, testReloadSwapsPoliciesAndKeepsTheOldOnError)
}

func testReloadSwapsPoliciesAndKeepsTheOldOnError(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "before reload")
	gen := h.a.Status().Policy.Generation

	// A new policy that lets cat open.
	catOK := strings.Replace(policyFor(h.fs, ""), realPath("head"), realPath("cat"), 1)
	if err := os.WriteFile(h.policy, []byte(catOK), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if g := h.a.Status().Policy.Generation; g != gen+1 {
		t.Errorf("generation %d after reload, want %d", g, gen+1)
	}
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "after reload")

	// A broken policy is rejected and the last good one stays in force.
	if err := os.WriteFile(h.policy, []byte("apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: x}\nspec: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err == nil || !errors.Is(err, ErrPolicy) {
		t.Fatalf("reload of a broken policy: %v", err)
	}
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "after a rejected reload")
	out, err = run(t, "/", "tail", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "others after a rejected reload")
	if st := h.a.Status(); st.Policy.Generation != gen+1 || st.ReloadFailure != 1 || !strings.Contains(st.Policy.Error, "rules") {
		t.Errorf("status after a rejected reload: generation %d, failures %d, error %q", st.Policy.Generation, st.ReloadFailure, st.Policy.Error)
	}
	// Fixing the policy clears the reported error.
	if err := os.WriteFile(h.policy, []byte(policyFor(h.fs, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := h.a.Status(); st.Policy.Error != "" {
		t.Errorf("policy error still reported after a good reload: %q", st.Policy.Error)
	}
}

func TestDeadlineAppliesTheFailureMode(t *testing.T) {
	for _, mode := range []config.FailureMode{config.FailOpen, config.FailClosed} {
		t.Run(string(mode), func(t *testing.T) {
			stall := make(chan struct{})
			h := startAgent(t, func(fs string) string { return policyFor(fs, "") },
				func(c *config.Config) { c.FailureMode = mode; c.Deadline = 100 * time.Millisecond },
				func(o *Options) { o.decideHook = func() { <-stall } })
			defer close(stall)
			out, err := run(t, "/", "head", h.path("secret/plan.txt"))
			if mode == config.FailOpen {
				mustAllow(t, out, err, "stalled decision, fail open")
			} else {
				mustDeny(t, out, err, "stalled decision, fail closed")
			}
			// The miss is counted just after the kernel is answered.
			waitFor(t, func() bool { return h.a.stats.fails[0].Load() > 0 }, "the deadline miss to be counted")
		})
	}
}

func TestReloadUnderLoadNeverDecidesWrong(t *testing.T) {
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	withTail := policyFor(h.fs, `    - name: tail-may-open
      operations: [open]
      subjects: {executables: [`+realPath("tail")+`]}
      effect: allow
`)
	without := policyFor(h.fs, "")
	ctx, cancel := context.WithCancel(context.Background())
	var reloads atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			text := without
			if i%2 == 0 {
				text = withTail
			}
			if err := os.WriteFile(h.policy, []byte(text), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := h.a.Reload(); err != nil {
				t.Error(err)
				return
			}
			reloads.Add(1)
		}
	}()
	// Clients run until both they and the reloads have done enough to
	// overlap (counted, not timed: a loaded machine only takes longer).
	end := time.Now().Add(2 * time.Minute)
	for i := 0; i < 40 || reloads.Load() < 10; i++ {
		if time.Now().After(end) {
			t.Fatalf("after %d clients, only %d reloads", i, reloads.Load())
		}
		out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
		mustDeny(t, out, err, fmt.Sprintf("cat during reloads (%d)", i))
		out, err = run(t, "/", "head", h.path("secret/plan.txt"))
		mustAllow(t, out, err, fmt.Sprintf("head during reloads (%d)", i))
	}
	cancel()
	<-done
	t.Logf("%d reloads", reloads.Load())
}

func TestStatusSocketAndMetrics(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "status.sock")
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, func(c *config.Config) { c.StatusSocket = sock })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.a.ServeStatus(ctx)
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat")
	// The decision is counted just after the kernel is answered, so cat
	// can return before the counter moves: wait for it rather than read once.
	var st Status
	waitFor(t, func() bool {
		st, err = QueryStatus(ctx, sock)
		return err == nil && st.Counters["open.deny"] >= 1
	}, "the status socket to report the denied open")
	if !st.Ready || st.Mode != "enforce" || st.Policy.Generation != 1 || !strings.HasPrefix(st.Policy.Hash, "sha256:") ||
		st.Environment.Hypervisor != "kvm" || len(st.Marked) != 1 || st.Counters["open.deny"] != 1 {
		t.Errorf("status: %+v", st)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("status socket mode: %v %v", fi, err)
	}

	srv := httptest.NewServer(h.a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`drmfilter_events_total{decision="deny",operation="open"} 1`,
		`drmfilter_failures_total{reason="deadline",verdict="allow"} 0`,
		`drmfilter_policy_generation{hash="` + st.Policy.Hash + `"} 1`,
		`drmfilter_decision_seconds_count`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for path, code := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != code {
			t.Errorf("%s: %v %v", path, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

// Status answers while a reload holds the reload lock (a reload of a large
// policy re-indexes every protected file, which can take seconds), and
// still lists the marked filesystems.
func TestStatusDoesNotWaitForAReload(t *testing.T) {
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	h.a.reloadMu.Lock()
	done := make(chan Status, 1)
	go func() { done <- h.a.Status() }()
	select {
	case st := <-done:
		h.a.reloadMu.Unlock()
		if len(st.Marked) != 1 || st.Marked[0] != h.fs {
			t.Errorf("marked filesystems during a reload: %v, want [%s]", st.Marked, h.fs)
		}
	case <-time.After(10 * time.Second):
		h.a.reloadMu.Unlock()
		<-done
		t.Fatal("Status waited for the reload lock")
	}
}

// The files learned between walks are bounded; when they fill their part
// of the index the agent walks the policies' roots again, and the files
// past the bound are protected by identity after all.
func TestIndexWalksAgainWhenLearnedFilesFillIt(t *testing.T) {
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	h.a.index.mu.Lock()
	h.a.index.learnedCap = 2
	h.a.index.mu.Unlock()
	for i := range 5 {
		if err := os.WriteFile(h.path(fmt.Sprintf("secret/new-%d.txt", i)), []byte("new\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	last := h.path("secret/new-4.txt")
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	sys := fi.Sys().(*syscall.Stat_t)
	waitFor(t, func() bool {
		_, ok := h.a.index.lookup(uint64(sys.Dev), sys.Ino)
		return ok
	}, "the walk to index the files past the bound")
	if err := os.Link(last, h.path("public/link-4.txt")); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "/", "cat", h.path("public/link-4.txt"))
	mustDeny(t, out, err, "a hard link to a file created past the bound")
}
