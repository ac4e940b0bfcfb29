package agent

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/signs"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// The tamper tests run an agent as its own process, from a copy of this
// test binary (so that this process, the attacker, runs another
// executable than the agent), with the bpf backend pinned and protecting
// itself, and attack it as root. They run in the qemu guest
// (TestBehaviourInGuest), as the bpf subtests of the behaviour suite do.

// TestHelperPinnedAgent is the agent process of the tamper tests: it runs
// the configuration at $DRMFILTER_TAMPER_CONFIG with its admin socket,
// says "agent-ready" on stdout once enforcing, and exits at once, as a
// crash would, when the file $DRMFILTER_TAMPER_CRASH appears.
func TestHelperPinnedAgent(t *testing.T) {
	path := os.Getenv("DRMFILTER_TAMPER_CONFIG")
	if path == "" {
		t.Skip("helper process only")
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	env := environ.Report{Hypervisor: "kvm", Cloud: "none", Container: "none"}
	a, err := New(Options{Config: cfg, ConfigFile: path, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Env: &env})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ln, err := a.ListenAdmin()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.ServeAdminOn(ctx, ln) }()
	go func() {
		for !a.ready.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		os.Stdout.WriteString("agent-ready\n")
	}()
	if crash := os.Getenv("DRMFILTER_TAMPER_CRASH"); crash != "" {
		go func() {
			for {
				if _, err := os.Stat(crash); err == nil {
					os.Exit(3) // no deferred cleanup, as in a crash
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// tamperRig is one pinned, self-protecting agent setup.
type tamperRig struct {
	t         *testing.T
	fs        string // the protected tmpfs
	secret    string
	dir       string // configuration, keys, logs
	config    string
	policy    string // the policy file, in policyDir
	keys      string // the admin public keys
	privKey   string // the admin private key
	config2   string // config, with takeOverRunning
	admin     string // the admin socket
	policyDir string
	pins      string
	record    string // the enforcement record (bpf.recordFile)
	auditF    string
	signer    ssh.Signer
	crash     string
	agentPs   []*exec.Cmd
	stderr    *os.File
}

// policyText is the rig's policy, with extra rules first.
func (r *tamperRig) policyText(extra string) string {
	return policyFor(r.fs, extra+fmt.Sprintf(`    - name: mv-may-rename
      operations: [rename]
      subjects: {executables: [%q]}
      effect: allow
    - name: nobody-destroys
      operations: [delete, rename, truncate, setattr]
      effect: deny
`, realPath("mv")))
}

func newTamperRig(t *testing.T) *tamperRig {
	t.Helper()
	r := &tamperRig{t: t, fs: testutil.MountTmpfs(t), dir: t.TempDir()}
	for _, d := range []string{"secret", "public"} {
		if err := os.Mkdir(filepath.Join(r.fs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.secret = filepath.Join(r.fs, "secret", "plan.txt")
	if err := os.WriteFile(r.secret, []byte("the plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.fs, "secret", "tomove.txt"), []byte("moved\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.policyDir = filepath.Join(r.dir, "policies")
	if err := os.Mkdir(r.policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.policy = filepath.Join(r.policyDir, "policy.yaml")
	if err := os.WriteFile(r.policy, []byte(r.policyText("")), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if r.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	r.privKey = filepath.Join(r.dir, "admin.key")
	if err := os.WriteFile(r.privKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	r.keys = filepath.Join(r.dir, "admin.pub")
	if err := os.WriteFile(r.keys, ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(r.dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	r.admin = filepath.Join(run, "admin.sock")
	r.pins = fmt.Sprintf("/sys/fs/bpf/drmfilter-test-%d", time.Now().UnixNano())
	if err := os.Mkdir(filepath.Join(r.dir, "log"), 0o700); err != nil {
		t.Fatal(err)
	}
	r.auditF = filepath.Join(r.dir, "log", "audit.jsonl")
	r.record = filepath.Join(r.dir, "state", "enforcement.json")
	r.crash = filepath.Join(r.dir, "crash")
	r.config = filepath.Join(r.dir, "config.yaml")
	cfg := fmt.Sprintf(`policies: [%q]
backend: bpf
statusSocket: ""
adminSocket: %q
adminKeys: [%q]
audit: {file: %q}
cri: {disabled: true}
bpf: {pinPath: %q, recordFile: %q, lockKernel: true, selfProtect: true}
`, r.policyDir, r.admin, r.keys, r.auditF, r.pins, r.record)
	if err := os.WriteFile(r.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.config2 = filepath.Join(r.dir, "config-takeover.yaml")
	cfg2 := strings.Replace(cfg, "selfProtect: true}", fmt.Sprintf("selfProtect: true, takeOverRunning: true, handoverKey: %q}", r.privKey), 1)
	if cfg2 == cfg {
		t.Fatal("config: no bpf settings to add takeOverRunning to")
	}
	if err := os.WriteFile(r.config2, []byte(cfg2), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.stderr, err = os.Create(filepath.Join(r.dir, "agent.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cleanup)
	return r
}

// agentCopy copies this test binary to a new file: another executable
// (another inode) than the one this process runs.
func (r *tamperRig) agentCopy(name string) string {
	r.t.Helper()
	self, err := os.Executable()
	if err != nil {
		r.t.Fatal(err)
	}
	dst := filepath.Join(r.dir, name)
	copyFile(r.t, self, dst)
	if err := os.Chmod(dst, 0o755); err != nil {
		r.t.Fatal(err)
	}
	return dst
}

// start runs the agent from exe and waits until it enforces.
func (r *tamperRig) start(exe string) *exec.Cmd {
	r.t.Helper()
	cmd, err := r.tryStart(exe)
	if err != nil {
		r.t.Fatal(err)
	}
	return cmd
}

// tryStart is start, returning why the agent did not become ready.
func (r *tamperRig) tryStart(exe string) (*exec.Cmd, error) {
	r.t.Helper()
	return r.tryStartWith(exe, r.config)
}

func (r *tamperRig) tryStartWith(exe, config string) (*exec.Cmd, error) {
	r.t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperPinnedAgent$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DRMFILTER_TAMPER_CONFIG="+config, "DRMFILTER_TAMPER_CRASH="+r.crash)
	cmd.Stderr = r.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.agentPs = append(r.agentPs, cmd)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
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
			_ = cmd.Wait()
			return nil, fmt.Errorf("the agent exited before it was ready (%v); its log:\n%s", cmd.ProcessState, r.log())
		}
	case <-time.After(2 * time.Minute): // a bound against a hang: loading under emulation takes seconds
		return nil, fmt.Errorf("the agent was not ready within two minutes; its log:\n%s", r.log())
	}
	return cmd, nil
}

func (r *tamperRig) log() string {
	b, _ := os.ReadFile(r.stderr.Name())
	return string(b)
}

// waitExit waits for the agent process to exit.
func (r *tamperRig) waitExit(cmd *exec.Cmd) {
	r.t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		r.t.Fatalf("the agent (pid %d) did not exit within a minute", cmd.Process.Pid)
	}
}

func (r *tamperRig) administer(req AdminRequest, signer ssh.Signer) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Administer(ctx, r.admin, req, signer)
}

// cleanup unloads whatever is still pinned: through a running agent, or
// by starting one to do it.
func (r *tamperRig) cleanup() {
	running := false
	for _, c := range r.agentPs {
		if c.ProcessState == nil && unix.Kill(c.Process.Pid, 0) == nil {
			running = true
		}
	}
	if !running && bpflsm.Pinned(r.pins) {
		r.start(r.agentCopy("cleanup-agent"))
		running = true
	}
	if running {
		if err := r.administer(AdminRequest{Op: AdminStop, Unload: true}, r.signer); err != nil {
			r.t.Errorf("cleanup: stop --unload: %v", err)
		}
	}
	for _, c := range r.agentPs {
		if c.ProcessState == nil {
			r.waitExit(c)
		}
	}
	if bpflsm.Pinned(r.pins) {
		r.t.Errorf("cleanup: the pins at %s are still there", r.pins)
	}
	r.stderr.Close()
	if r.t.Failed() {
		r.t.Logf("the agents' log:\n%s", r.log())
	}
}

// records are the audit records written so far.
func (r *tamperRig) records() []audit.Record {
	r.t.Helper()
	b, err := os.ReadFile(r.auditF)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			r.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// waitTamperRecord waits for the agent to have written a tamper record of
// kind what.
func (r *tamperRig) waitTamperRecord(what string) {
	r.t.Helper()
	waitFor(r.t, func() bool {
		for _, rec := range r.records() {
			if rec.Operation == audit.OpTamper && strings.HasPrefix(rec.Reason, what+":") && rec.Decision == audit.DecisionDeny {
				return true
			}
		}
		return false
	}, "a tamper record of "+what)
}

func (r *tamperRig) mustBeProtected(what string) {
	r.t.Helper()
	out, err := run(r.t, "/", "cat", r.secret)
	mustDeny(r.t, out, err, what+": cat of the protected file")
	out, err = run(r.t, "/", "head", r.secret)
	mustAllow(r.t, out, err, what+": head of the protected file")
	if err := os.Truncate(r.secret, 0); err == nil {
		r.t.Errorf("%s: truncate of the protected file succeeded", what)
	}
}

func TestTamperResistance(t *testing.T) { bpfOnly(t, testTamperResistance) }

func testTamperResistance(t *testing.T) {
	r := newTamperRig(t)
	exe := r.agentCopy("drmfilter-agent")
	agent := r.start(exe)
	pid := agent.Process.Pid
	r.mustBeProtected("with the agent running")

	t.Run("signals", func(t *testing.T) {
		for _, sig := range []syscall.Signal{unix.SIGKILL, unix.SIGSTOP, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGSEGV} {
			if err := unix.Kill(pid, sig); !errors.Is(err, unix.EPERM) {
				t.Errorf("kill -%d of the agent by root: %v, want EPERM", sig, err)
			}
		}
		if err := unix.Tgkill(pid, pid, unix.SIGKILL); !errors.Is(err, unix.EPERM) {
			t.Errorf("tgkill SIGKILL of the agent: %v, want EPERM", err)
		}
		if err := unix.Kill(pid, 0); err != nil {
			t.Fatalf("the agent is gone after the signals: %v", err)
		}
		r.waitTamperRecord("signal")
	})
	r.mustBeProtected("after the signals")

	t.Run("ptrace", func(t *testing.T) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := unix.PtraceAttach(pid); err == nil {
			_ = unix.PtraceDetach(pid)
			t.Error("PTRACE_ATTACH to the agent succeeded")
		}
		if err := unix.PtraceSeize(pid); err == nil {
			_ = unix.PtraceDetach(pid)
			t.Error("PTRACE_SEIZE of the agent succeeded")
		}
		if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0); err == nil {
			f.Close()
			t.Error("opening the agent's /proc/PID/mem for writing succeeded")
		}
		buf := make([]byte, 8)
		local := []unix.Iovec{{Base: &buf[0], Len: 8}}
		remote := []unix.RemoteIovec{{Base: 0x400000, Len: 8}}
		if _, err := unix.ProcessVMWritev(pid, local, remote, 0); errors.Is(err, unix.ENOSYS) || err == nil {
			t.Errorf("process_vm_writev into the agent: %v, want a refusal", err)
		}
		if pfd, err := unix.PidfdOpen(pid, 0); err == nil {
			if fd, err := unix.PidfdGetfd(pfd, 3, 0); err == nil {
				unix.Close(fd)
				t.Error("pidfd_getfd of the agent's descriptor 3 succeeded")
			}
			unix.Close(pfd)
		}
		r.waitTamperRecord("ptrace")
	})

	t.Run("bpf objects", func(t *testing.T) {
		if m, err := ebpf.LoadPinnedMap(filepath.Join(r.pins, "map_guard"), nil); err == nil {
			m.Close()
			t.Error("opening the pinned guard map succeeded")
		}
		if m, err := ebpf.LoadPinnedMap(filepath.Join(r.pins, "gen_files"), nil); err == nil {
			m.Close()
			t.Error("opening the pinned files map succeeded")
		}
		// By ID, as bpftool map/prog/link show does: every object in
		// this guest is the agent's (the other tests' agents are gone).
		refused := 0
		for id := ebpf.MapID(0); ; {
			next, err := ebpf.MapGetNextID(id)
			if err != nil {
				break
			}
			id = next
			m, err := ebpf.NewMapFromID(id)
			if err == nil {
				info, _ := m.Info()
				m.Close()
				if info != nil && ownMapNames[info.Name] {
					t.Errorf("map %d (%s) opened by ID", id, info.Name)
				}
				continue
			}
			if errors.Is(err, unix.EPERM) {
				refused++
			}
		}
		for id := ebpf.ProgramID(0); ; {
			next, err := ebpf.ProgramGetNextID(id)
			if err != nil {
				break
			}
			id = next
			p, err := ebpf.NewProgramFromID(id)
			if err == nil {
				info, _ := p.Info()
				p.Close()
				if info != nil && strings.Contains(info.Name, "file_open") {
					t.Errorf("program %d (%s) opened by ID", id, info.Name)
				}
				continue
			}
			if errors.Is(err, unix.EPERM) {
				refused++
			}
		}
		links := 0
		for id := uint32(0); ; {
			next, err := linkGetNextID(id)
			if err != nil {
				break
			}
			id = next
			l, err := link.NewFromID(link.ID(id))
			if err == nil {
				l.Close()
				t.Errorf("link %d opened by ID", id)
				continue
			}
			if errors.Is(err, unix.EPERM) {
				links++
			}
		}
		if refused < 10 || links < 10 {
			t.Errorf("%d maps and programs and %d links refused by ID; want the agent's (tens of each)", refused, links)
		}
		// A link from its pin: it can neither be detached nor replaced.
		if l, err := link.LoadPinnedLink(filepath.Join(r.pins, "link_file_open"), nil); err == nil {
			if err := l.Detach(); err == nil {
				t.Error("detaching the pinned file_open link succeeded")
			}
			l.Close()
		}
		r.waitTamperRecord("bpf-map")
		r.waitTamperRecord("bpf-link")
	})
	r.mustBeProtected("after the bpf attempts")

	t.Run("pins and their filesystem", func(t *testing.T) {
		if err := os.Remove(filepath.Join(r.pins, "link_file_open")); err == nil {
			t.Error("removing the file_open link's pin succeeded")
		}
		if err := os.Rename(filepath.Join(r.pins, "map_guard"), filepath.Join(r.pins, "moved")); err == nil {
			t.Error("renaming the guard map's pin succeeded")
		}
		if err := os.RemoveAll(r.pins); err == nil {
			t.Error("rm -rf of the pin directory succeeded")
		}
		if err := os.Rename(r.pins, r.pins+"-moved"); err == nil {
			t.Error("renaming the pin directory succeeded")
		}
		for _, mnt := range []string{"/sys/fs/bpf", "/sys"} {
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err == nil {
				t.Errorf("umount -l %s succeeded", mnt)
			}
		}
		if !bpflsm.Pinned(r.pins) {
			t.Fatal("the pins are gone")
		}
		r.waitTamperRecord("pin")
		r.waitTamperRecord("umount")
	})
	r.mustBeProtected("after the attempts on the pins")

	t.Run("the agent's executable under a tracer", func(t *testing.T) {
		// gdb-style: the child asks to be traced, then runs the agent's
		// executable, which could take the pinned programs over.
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
		err := cmd.Start()
		if err == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Error("starting the agent's executable under ptrace succeeded")
		}
		r.waitTamperRecord("exec-traced")
	})

	t.Run("unauthorized administration", func(t *testing.T) {
		if err := r.administer(AdminRequest{Op: AdminStop, Unload: true}, nil); err == nil {
			t.Fatal("an unsigned stop --unload by root was accepted")
		}
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		wrong, _ := ssh.NewSignerFromKey(other)
		if err := r.administer(AdminRequest{Op: AdminStop, Unload: true}, wrong); err == nil {
			t.Fatal("a stop --unload signed by another key was accepted")
		}
		if err := unix.Kill(pid, 0); err != nil {
			t.Fatalf("the agent is gone: %v", err)
		}
	})
	r.mustBeProtected("after the refused stops")

	openW := func(p string) error {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.Close()
		}
		return err
	}
	t.Run("the agent's files", func(t *testing.T) {
		refused := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, unix.EPERM) {
				t.Errorf("%s: %v, want EPERM (the programs' refusal)", what, err)
			}
		}
		refused("appending to the policy file", openW(r.policy))
		refused("truncating the policy file", os.Truncate(r.policy, 0))
		refused("removing the policy file", os.Remove(r.policy))
		refused("renaming the policy file", os.Rename(r.policy, r.policy+".off"))
		refused("creating a policy file", os.WriteFile(filepath.Join(r.policyDir, "allow-all.yaml"), []byte("x"), 0o644))
		refused("linking a policy file in", os.Symlink("/tmp/elsewhere.yaml", filepath.Join(r.policyDir, "elsewhere.yaml")))
		refused("renaming the policy directory", os.Rename(r.policyDir, r.policyDir+"-old"))
		refused("renaming the directory above the policies", os.Rename(r.dir, r.dir+"-old"))
		refused("writing the configuration", openW(r.config))
		refused("chmod of the configuration", os.Chmod(r.config, 0o666))
		refused("replacing the admin keys", os.WriteFile(r.keys, []byte("ssh-ed25519 AAAA attacker\n"), 0o644))
		refused("appending a forged audit record", openW(r.auditF))
		refused("removing the audit log", os.Remove(r.auditF))
		refused("removing the admin socket", os.Remove(r.admin))
		if _, err := os.Stat(filepath.Join(r.policyDir, "allow-all.yaml")); err == nil {
			t.Error("a refused create left a file in the policy directory")
		}
		r.waitTamperRecord("file")
	})
	r.mustBeProtected("after the attempts on the agent's files")

	t.Run("authorized policy change", func(t *testing.T) {
		withCat := []byte(r.policyText(fmt.Sprintf(`    - name: cat-may-open
      operations: [open]
      subjects: {executables: [%q]}
      effect: allow
`, realPath("cat"))))
		if err := r.administer(AdminRequest{Op: AdminPolicyPut, Name: "policy.yaml", Data: withCat}, nil); err == nil {
			t.Fatal("an unsigned policy change was accepted")
		}
		if err := r.administer(AdminRequest{Op: AdminPolicyPut, Name: "policy.yaml", Data: []byte("kind: [")}, r.signer); err == nil {
			t.Fatal("a policy that does not load was accepted")
		}
		r.mustBeProtected("after the refused policy changes")
		if err := r.administer(AdminRequest{Op: AdminPolicyPut, Name: "policy.yaml", Data: withCat}, r.signer); err != nil {
			t.Fatalf("a signed policy change: %v", err)
		}
		waitFor(t, func() bool {
			_, err := run(t, "/", "cat", r.secret)
			return err == nil
		}, "cat to be allowed by the applied policy")
		if err := r.administer(AdminRequest{Op: AdminPolicyPut, Name: "policy.yaml", Data: []byte(r.policyText(""))}, r.signer); err != nil {
			t.Fatalf("putting the policy back: %v", err)
		}
		waitFor(t, func() bool {
			_, err := run(t, "/", "cat", r.secret)
			return err != nil
		}, "cat to be denied again")
		if err := openW(r.policy); err == nil {
			t.Error("the policy file written through the admin socket is not sealed")
		}
	})
	r.mustBeProtected("after the policy changes")

	// A file renamed out of the protected tree is kept by identity in the
	// kernel; it stays protected across the crash and the takeovers below.
	moved := filepath.Join(r.fs, "public", "moved.txt")
	if out, err := run(t, "/", "mv", filepath.Join(r.fs, "secret", "tomove.txt"), moved); err != nil {
		t.Fatalf("mv out of the protected tree: %v %s", err, out)
	}
	out, err := run(t, "/", "cat", moved)
	mustDeny(t, out, err, "cat of the file renamed out")

	// Steady load: cat (denied) and head (allowed) of the protected file
	// in a loop through the crash, the restart and the upgrade.
	load := startOpenLoop(r.secret)
	stopLoad := load.stop
	waitLoad := func(n int64) { load.wait(t, n) }
	waitLoad(3)

	// A crash: the agent exits without any cleanup; the pinned programs
	// go on deciding, and still guard their pins.
	if err := os.WriteFile(r.crash, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.waitExit(agent)
	if err := os.Remove(r.crash); err != nil {
		t.Fatal(err)
	}
	waitLoad(3)
	r.mustBeProtected("with the agent crashed")
	if err := os.Remove(filepath.Join(r.pins, "link_file_open")); err == nil {
		t.Error("removing a pin while the agent is down succeeded")
	}
	out, err = run(t, "/", "cat", moved)
	mustDeny(t, out, err, "with the agent crashed: cat of the file renamed out")
	// Not running, its executable could be written (no "text file
	// busy"), and then trusted to take over: it stays sealed.
	for what, err := range map[string]error{"writing": openW(exe), "truncating": os.Truncate(exe, 0), "chmod of": os.Chmod(exe, 0o777)} {
		if !errors.Is(err, unix.EPERM) {
			t.Errorf("%s the agent's executable while it is down: %v, want EPERM", what, err)
		}
	}

	// Restart: the agent takes the pinned programs over.
	agent = r.start(exe)
	waitLoad(3)
	r.mustBeProtected("after the restart")
	if !strings.Contains(r.log(), "took over the programs pinned") {
		t.Error("the restarted agent did not say it took over the pinned programs")
	}
	out, err = run(t, "/", "cat", moved)
	mustDeny(t, out, err, "after the restart: cat of the file renamed out")

	// Upgrade: the running agent hands the programs to a new executable
	// (signed), exits, and the new one takes them over.
	next := r.agentCopy("drmfilter-agent-2")
	if err := r.administer(AdminRequest{Op: AdminUpgrade, Exe: next}, r.signer); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	r.waitExit(agent)
	waitLoad(3)
	r.mustBeProtected("between the agents of the upgrade")
	agent = r.start(next)
	waitLoad(3)
	r.mustBeProtected("after the upgrade")
	out, err = run(t, "/", "cat", moved)
	mustDeny(t, out, err, "after the upgrade: cat of the file renamed out")
	pid = agent.Process.Pid
	if err := unix.Kill(pid, unix.SIGKILL); !errors.Is(err, unix.EPERM) {
		t.Errorf("kill -9 of the upgraded agent: %v, want EPERM", err)
	}

	// An upgrade in place, as a package manager does it: the new file is
	// renamed over the executable's path, then the service restarts.
	if err := r.administer(AdminRequest{Op: AdminAwait, Exe: next}, r.signer); err != nil {
		t.Fatalf("await-upgrade: %v", err)
	}
	staged := r.agentCopy("drmfilter-agent-2.dpkg-new")
	if err := os.Rename(staged, next); err != nil {
		t.Fatalf("installing the new executable by rename: %v", err)
	}
	if err := r.administer(AdminRequest{Op: AdminStop}, r.signer); err != nil {
		t.Fatalf("stop for the restart: %v", err)
	}
	r.waitExit(agent)
	waitLoad(3)
	agent = r.start(next)
	waitLoad(3)
	r.mustBeProtected("after the upgrade in place")
	stopLoad()
	if n := load.catAllowed.Load(); n != 0 {
		t.Errorf("%d of %d cat opens of the protected file were allowed across the crash, restart and upgrade", n, load.catDone.Load())
	}
	if load.headRead.Load() == 0 {
		t.Error("head never read the protected file during the load")
	}
	t.Logf("load: %d cat opens (all denied), %d head reads", load.catDone.Load(), load.headRead.Load())

	// Stop without unloading (signed): the programs stay.
	if err := r.administer(AdminRequest{Op: AdminStop}, r.signer); err != nil {
		t.Fatalf("stop: %v", err)
	}
	r.waitExit(agent)
	r.mustBeProtected("after a stop without --unload")

	// An executable someone else put at the service's path is not
	// trusted to take over (the trusted file is kept by a hard link).
	keep := next + "-trusted"
	if err := os.Link(next, keep); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(r.agentCopy("impostor"), next); err != nil {
		t.Fatal(err)
	}
	if c, err := r.tryStart(next); err == nil {
		r.agentPs = append(r.agentPs, c)
		t.Error("an executable renamed over the agent's without an upgrade took the pinned programs over")
	} else if !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("the impostor failed for another reason than a refusal: %v", err)
	}
	r.mustBeProtected("after the impostor's start")

	// A rolling update (the DaemonSet's): the new agent starts beside the
	// running one, which hands the programs over, then is stopped by its
	// supervisor's signal: it is no longer the agent.
	agent = r.start(keep)
	load2 := startOpenLoop(r.secret)
	newer, err := r.tryStartWith(r.agentCopy("drmfilter-agent-3"), r.config2)
	if err != nil {
		load2.stop()
		t.Fatalf("the new agent of the rolling update: %v", err)
	}
	if err := unix.Kill(newer.Process.Pid, unix.SIGKILL); !errors.Is(err, unix.EPERM) {
		t.Errorf("kill -9 of the agent that took over: %v, want EPERM", err)
	}
	if err := unix.Kill(agent.Process.Pid, unix.SIGTERM); err != nil {
		t.Errorf("SIGTERM of the agent that handed over (its supervisor's stop): %v", err)
	}
	r.waitExit(agent)
	load2.wait(t, 3)
	load2.stop()
	if n := load2.catAllowed.Load(); n != 0 {
		t.Errorf("%d of %d cat opens were allowed across the handover", n, load2.catDone.Load())
	}
	r.mustBeProtected("after the handover")
	agent = newer

	// The record a later boot without BPF LSM is noticed by says the
	// programs enforce, and no other process may change it.
	if rec, err := signs.Read(r.record); err != nil || !rec.Pinned || rec.Unloaded || rec.BootID != signs.BootID() {
		t.Errorf("the enforcement record while the programs enforce: %+v %v", rec, err)
	}
	if err := os.WriteFile(r.record, []byte(`{"backend":"fanotify"}`), 0o600); !errors.Is(err, unix.EPERM) {
		t.Errorf("root overwrote the enforcement record: %v, want EPERM", err)
	}
	// bpf.lockKernel: no kernel module is loaded while the programs
	// enforce (a junk one: the kernel's own checks would refuse it with
	// another error).
	junk := filepath.Join(r.dir, "junk.ko")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a module\n", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	finit := func() error {
		f, err := os.Open(junk)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return unix.FinitModule(int(f.Fd()), "", 0)
	}
	if err := finit(); !errors.Is(err, unix.EPERM) {
		t.Errorf("finit_module while the programs enforce with lockKernel: %v, want EPERM", err)
	}
	// Stop --unload, then.
	if err := r.administer(AdminRequest{Op: AdminStop, Unload: true}, r.signer); err != nil {
		t.Fatalf("stop --unload: %v", err)
	}
	r.waitExit(agent)
	if err := finit(); errors.Is(err, unix.EPERM) || err == nil {
		t.Errorf("finit_module of a junk module after stop --unload: %v, want the kernel's own refusal", err)
	}
	if rec, err := signs.Read(r.record); err != nil || !rec.Unloaded {
		t.Errorf("the enforcement record after stop --unload: %+v %v, want unloaded", rec, err)
	}
	if bpflsm.Pinned(r.pins) {
		t.Error("the pins are still there after stop --unload")
	}
	out, err = run(t, "/", "cat", r.secret)
	mustAllow(t, out, err, "cat after stop --unload")
	var authorized, kernelLoads int
	for _, rec := range r.records() {
		if rec.Operation == audit.OpTamper && strings.HasPrefix(rec.Reason, "kernel-load: ") {
			kernelLoads++
		}
		if strings.HasPrefix(rec.Operation, "admin-") {
			if rec.Decision == audit.DecisionAudit {
				authorized++
			} else if rec.Decision != audit.DecisionDeny {
				t.Errorf("admin record with decision %q: %+v", rec.Decision, rec)
			}
		}
	}
	if authorized < 7 {
		t.Errorf("%d authorized administration requests audited, want 7 (policy changes, upgrades, stops, handover)", authorized)
	}
	if kernelLoads != 1 {
		t.Errorf("%d kernel-load tamper records, want 1 (the refused finit_module)", kernelLoads)
	}
}

// ownMapNames are the agent's map names as the kernel keeps them.
var ownMapNames = map[string]bool{"procs": true, "events": true, "counters": true, "guard": true, "owned": true,
	"files": true, "places": true, "classes": true, "rules": true, "rule_subj": true, "exe_names": true,
	"sbs": true, "settings": true, "seen": true, "scratch": true, "drm_classes": true}

// linkGetNextID is BPF_LINK_GET_NEXT_ID (cilium/ebpf keeps it internal).
func linkGetNextID(id uint32) (uint32, error) {
	attr := struct{ start, next, flags uint32 }{start: id}
	_, _, errno := unix.Syscall(unix.SYS_BPF, 31 /* BPF_LINK_GET_NEXT_ID */, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return 0, errno
	}
	return attr.next, nil
}

// openLoop opens a protected file over and over, with cat (which must
// always be denied) and head (allowed), counting what happened.
type openLoop struct {
	catAllowed, catDone, headRead atomic.Int64
	done                          chan struct{}
	wg                            sync.WaitGroup
}

func startOpenLoop(file string) *openLoop {
	l := &openLoop{done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.done:
				return
			default:
			}
			if exec.Command("cat", file).Run() == nil {
				l.catAllowed.Add(1)
			}
			l.catDone.Add(1)
			if exec.Command("head", "-c1", file).Run() == nil {
				l.headRead.Add(1)
			}
		}
	}()
	return l
}

// wait waits for n more rounds of the loop.
func (l *openLoop) wait(t *testing.T, n int64) {
	t.Helper()
	start := l.catDone.Load()
	waitFor(t, func() bool { return l.catDone.Load() >= start+n }, fmt.Sprintf("%d more opens of the load", n))
}

func (l *openLoop) stop() {
	close(l.done)
	l.wg.Wait()
}
