package agent

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// TestProcessIntegrity: an allowance a rule gives an executable holds
// only while the process runs trusted code. Code injected into an allowed
// program (LD_PRELOAD, LD_AUDIT, an untrusted library, anonymous
// executable memory, a tracer, a write into its memory) does not inherit
// it; the program started through the dynamic loader is not the program.
// bpf backend only: the fanotify backend cannot see what a process maps
// (see the README's threat model).
func TestProcessIntegrity(t *testing.T) { bpfOnly(t, testProcessIntegrity) }

func testProcessIntegrity(t *testing.T) {
	grab := testutil.BuildC(t, "grab.so", filepath.Join("testdata", "grab.c"), grabFlags...)
	mapper := testutil.BuildC(t, "mapper", filepath.Join("testdata", "mapper.c"))
	tail := realPath("tail")
	h := startAgentOn(t, config.BackendBPF, func(fs string) string {
		return onlyMayOpen("secrets", fs+"/secret", fmt.Sprintf("{executables: [%q, %q]}", tail, mapper))
	}, nil)
	secret := h.path("secret/plan.txt")

	out, err := run(t, "/", "tail", "-n1", secret)
	mustAllow(t, out, err, "plain tail")
	out, err = run(t, "/", mapper, "plain", secret)
	mustAllow(t, out, err, "mapper running only its own code")

	// The library's constructor runs inside tail, before its main.
	for _, v := range []string{"LD_PRELOAD", "LD_AUDIT"} {
		out, err = run(t, "/", "env", v+"="+grab, "GRAB_FILE="+secret, "tail", "-n0", "/dev/null")
		if strings.Contains(out, "grabbed") {
			t.Errorf("%s: the injected library read the protected file as tail: err=%v %q", v, err, out)
		} else if !strings.Contains(out, "refused") || err == nil {
			t.Errorf("%s: the library's constructor did not run (the test proves nothing): err=%v %q", v, err, out)
		}
	}
	// The library named but empty, and unrelated LD_ variables, change
	// nothing.
	out, err = run(t, "/", "env", "LD_PRELOAD=", "LD_BIND_NOW=1", "tail", "-n1", secret)
	mustAllow(t, out, err, "tail with an empty LD_PRELOAD and LD_BIND_NOW")

	// A library mapped from outside the trusted directories; one from
	// them keeps the allowance.
	untrusted := filepath.Join(t.TempDir(), "libcopy.so")
	trustedLib := systemLibrary(t)
	copyFile(t, trustedLib, untrusted)
	out, err = run(t, "/", mapper, "lib", secret, untrusted)
	mustDeny(t, out, err, "mapper after loading a library from a temporary directory")
	out, err = run(t, "/", mapper, "lib", secret, trustedLib)
	mustAllow(t, out, err, "mapper after loading "+trustedLib)
	out, err = run(t, "/", mapper, "anon", secret)
	mustDeny(t, out, err, "mapper after making anonymous memory executable")

	// Another process attaching to it, in each way the kernel offers.
	for _, how := range []string{"none", "ptrace", "/proc/PID/mem", "process_vm_writev"} {
		out, err := attachedThenRead(t, mapper, secret, how)
		if how == "none" {
			mustAllow(t, out, err, "mapper that no one attached to")
		} else {
			mustDeny(t, out, err, "mapper after "+how+" by another process")
		}
	}

	// Started through the loader, tail is not the process's executable.
	if ld := interpreter(t, tail); ld != "" {
		out, err = run(t, "/", ld, tail, "-n1", secret)
		mustDeny(t, out, err, "tail started through "+ld)
	}
	h.stop()
	withheld := 0
	for _, r := range h.audit.records(t) {
		if strings.Contains(r.Reason, "no allowance by executable") {
			withheld++
		}
	}
	if withheld < 5 {
		t.Errorf("%d deny records say the allowance was withheld, want one per injection case", withheld)
	}
}

// TestHelperAttacher attaches to $DRMFILTER_ATTACH_PID as
// $DRMFILTER_ATTACH_HOW says, for attachedThenRead.
func TestHelperAttacher(t *testing.T) {
	var pid int
	how := os.Getenv("DRMFILTER_ATTACH_HOW")
	if _, err := fmt.Sscan(os.Getenv("DRMFILTER_ATTACH_PID"), &pid); err != nil || how == "" {
		t.Skip("helper process only")
	}
	switch how {
	case "ptrace":
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := unix.PtraceAttach(pid); err != nil {
			t.Fatalf("ptrace attach: %v", err)
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			t.Fatalf("wait for the tracee: %v", err)
		}
		if err := unix.PtraceDetach(pid); err != nil {
			t.Fatalf("ptrace detach: %v", err)
		}
	case "/proc/PID/mem":
		f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
		if err != nil {
			t.Fatalf("open /proc/PID/mem: %v", err)
		}
		f.Close()
	case "process_vm_writev":
		b := []byte{0}
		_, err := unix.ProcessVMWritev(pid, []unix.Iovec{{Base: &b[0], Len: 1}}, []unix.RemoteIovec{{Base: 0x10000, Len: 1}}, 0)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			t.Fatalf("process_vm_writev: %v", err)
		}
	default:
		t.Fatalf("unknown way to attach: %s", how)
	}
}

// grabFlags build testdata/grab.c as a library that needs no other.
var grabFlags = []string{"-shared", "-fPIC", "-nostdlib", "-ffreestanding", "-fno-builtin"}

// attachedThenRead starts mapper waiting, attaches to it as how says
// (from this process), then lets it read the file.
func attachedThenRead(t *testing.T, mapper, file, how string) (string, error) {
	t.Helper()
	cmd := exec.Command(mapper, "wait", file)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	rd := bufio.NewReader(stdout)
	if line, err := rd.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("mapper wait: %q %v", line, err)
	}
	if how != "none" {
		// From another process: the agent (this process, in these
		// tests) is exempt from what it decides.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		att := exec.Command(self, "-test.run=^TestHelperAttacher$", "-test.count=1")
		att.Env = append(os.Environ(), fmt.Sprintf("DRMFILTER_ATTACH_PID=%d", cmd.Process.Pid), "DRMFILTER_ATTACH_HOW="+how)
		if out, err := att.CombinedOutput(); err != nil {
			t.Fatalf("attach by %s: %v\n%s", how, err, out)
		}
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var out strings.Builder
	go func() {
		rest, _ := rd.ReadString(0)
		out.WriteString(rest)
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(time.Minute):
		t.Fatalf("mapper (%s) did not finish", how)
	}
	return "", nil
}

// systemLibrary is a shared library in a trusted directory that mapper
// does not link already (so dlopen maps it).
func systemLibrary(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"} {
		for _, name := range []string{"libacl.so.1", "libattr.so.1", "libselinux.so.1", "libpcre2-8.so.0", "libm.so.6"} {
			p := filepath.Join(dir, name)
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return r
			}
		}
	}
	t.Fatal("no system library to load found")
	return ""
}

// interpreter is the ELF interpreter (the dynamic loader) of exe.
func interpreter(t *testing.T, exe string) string {
	t.Helper()
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

// exespoofFlags build testdata/exespoof.c, which must run with no library
// once it has unmapped the loader.
var exespoofFlags = []string{"-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector", "-fPIE", "-pie", "-Wl,-z,now"}

// TestExeSpoofedByPrctlIsNotTheProgram (issue 17, case 2): a process may
// point /proc/PID/exe at any executable file it can open, with
// prctl(PR_SET_MM, PR_SET_MM_MAP) and exe_fd, once its own executable is
// no longer mapped; root may, and so may any user in a user namespace of
// its own. The fanotify backend identifies a process by /proc/PID/exe and
// lets such a process pass for tail (the README's limits). The programs
// record the executable when its exec commits: the process stays the
// loader it was started as, whatever /proc/PID/exe says later. Both ways
// are checked: pointed at tail it is denied what tail may open, and
// pointed at cat it keeps what the loader may open (so neither the
// mapping of the program nor the prctl itself is what decides). bpf
// backend only.
func TestExeSpoofedByPrctlIsNotTheProgram(t *testing.T) { bpfOnly(t, testExeSpoofedByPrctl) }

func testExeSpoofedByPrctl(t *testing.T) {
	built := testutil.BuildC(t, "exespoof", filepath.Join("testdata", "exespoof.c"), exespoofFlags...)
	tail, cat := realPath("tail"), realPath("cat")
	ld := interpreter(t, tail)
	if ld == "" {
		t.Fatalf("%s has no program interpreter: the attack needs a dynamically linked target", tail)
	}
	// In a directory anyone may read, listed as trusted code, so that a
	// mapping of the program does not itself withhold the allowance.
	dir := t.TempDir()
	testutil.OpenToAll(t, dir)
	spoof := filepath.Join(dir, "exespoof")
	copyFile(t, built, spoof)
	h := startAgentOn(t, config.BackendBPF, func(fs string) string {
		return onlyMayOpen("secrets", fs+"/secret", fmt.Sprintf("{executables: [%q]}", tail)) + "---\n" +
			onlyMayOpen("loader-only", fs+"/public", fmt.Sprintf("{executables: [%q]}", ld))
	}, func(c *config.Config) { c.BPF.TrustedCodeDirs = append(c.BPF.TrustedCodeDirs, dir) })
	testutil.OpenToAll(t, h.fs) // for the unprivileged attacker
	secret, public := h.path("secret/plan.txt"), h.path("public/readme.txt")
	out, err := run(t, "/", "tail", "-n1", secret)
	mustAllow(t, out, err, "plain tail")
	out, err = run(t, "/", "tail", "-n1", public)
	mustDeny(t, out, err, "tail on what only the loader may open")

	// attack runs "ld.so exespoof TARGET FILE" as attr says.
	attack := func(who, target, file string, attr *syscall.SysProcAttr) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ld, spoof, target, file)
		cmd.Dir = "/"
		cmd.SysProcAttr = attr
		b, err := cmd.CombinedOutput()
		out := string(b)
		if ctx.Err() != nil {
			t.Fatalf("%s: the spoofing program hung: %q", who, out)
		}
		// The attack itself must have worked, or the test proves nothing.
		if !strings.Contains(out, "exe="+target+"\n") {
			t.Fatalf("%s: /proc/self/exe was not pointed at %s: err=%v %q", who, target, err, out)
		}
		return out, err
	}
	// An unprivileged user (65534) with a user namespace of its own, as
	// "unshare -Ur" gives any user.
	nobody := &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 65534, Size: 1}},
		Credential:  &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
	}
	for _, who := range []struct {
		name string
		attr *syscall.SysProcAttr
	}{{"root", nil}, {"nobody in a user namespace", nobody}} {
		out, err := attack(who.name, tail, secret, who.attr)
		if strings.Contains(out, "read: ") {
			t.Errorf("%s: a process whose /proc/PID/exe was pointed at tail read what tail may open: %q", who.name, out)
		}
		mustDeny(t, out, err, who.name+": open after pointing /proc/PID/exe at tail")
		out, err = attack(who.name, cat, public, who.attr)
		mustAllow(t, out, err, who.name+": open by the loader after pointing /proc/PID/exe at cat")
	}
	h.stop()
	loader, err := filepath.EvalSymlinks(ld)
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, r := range h.audit.records(t) {
		if r.Decision != "deny" || !strings.HasSuffix(r.Path, "secret/plan.txt") {
			continue
		}
		denied++
		if r.Exe != ld && r.Exe != loader {
			t.Errorf("the deny record names executable %q, want the loader %s that the exec ran: %+v", r.Exe, ld, r)
		}
	}
	if denied < 2 {
		t.Errorf("%d deny records for the protected file, want one per attack", denied)
	}
}

// TestScriptsIdentifyTheInterpretersProcess: a rule's scripts select an
// interpreter by the script its exec ran (execve of the script, through
// its "#!" line), known in the kernel by the script file's identity. The
// same text in another file, the interpreter run on the script by name,
// what the script execs, and the script run with an injected library are
// not the script; what it forks is. bpf backend only (the fanotify
// backend refuses such a rule: TestScriptsAreRefusedByTheFanotifyBackend).
func TestScriptsIdentifyTheInterpretersProcess(t *testing.T) {
	bpfOnly(t, testScriptsIdentifyTheInterpretersProcess)
}

func testScriptsIdentifyTheInterpretersProcess(t *testing.T) {
	sh := realPath("sh")
	dir := t.TempDir()
	text := fmt.Sprintf(`#!%s
case "$2" in
exec) exec cat "$1" ;;
fork) (read -r line < "$1" && echo "read: $line") ; exit $? ;;
esac
read -r line < "$1" && echo "read: $line"
`, sh)
	allowed, other := filepath.Join(dir, "allowed.sh"), filepath.Join(dir, "other.sh")
	for _, p := range []string{allowed, other} {
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	grab := testutil.BuildC(t, "grab.so", filepath.Join("testdata", "grab.c"), grabFlags...)
	h := startAgentOn(t, config.BackendBPF, func(fs string) string {
		return onlyMayOpen("secrets", fs+"/secret", fmt.Sprintf("{executables: [%q], scripts: [%q]}", sh, allowed))
	}, nil)
	secret := h.path("secret/plan.txt")

	out, err := run(t, "/", allowed, secret)
	mustAllow(t, out, err, "the script the rule names")
	if !strings.Contains(out, "read: the plan") {
		t.Errorf("the script did not read the file: %q", out)
	}
	out, err = run(t, "/", allowed, secret, "fork")
	mustAllow(t, out, err, "a subshell the script forks")
	out, err = run(t, "/", other, secret)
	mustDeny(t, out, err, "the same text in another file")
	out, err = run(t, "/", sh, allowed, secret)
	mustDeny(t, out, err, "the interpreter run on the script by name (not identified)")
	out, err = run(t, "/", sh, "-c", `read -r line < "$0" && echo "$line"`, secret)
	mustDeny(t, out, err, "the interpreter with no script")
	out, err = run(t, "/", allowed, secret, "exec")
	mustDeny(t, out, err, "cat, which the script execs")
	out, err = run(t, "/", "env", "LD_PRELOAD="+grab, "GRAB_FILE="+secret, allowed, "/dev/null")
	if strings.Contains(out, "grabbed") {
		t.Errorf("a library injected into the script's interpreter read the file: err=%v %q", err, out)
	} else if !strings.Contains(out, "refused") {
		t.Errorf("the library's constructor did not run (the test proves nothing): err=%v %q", err, out)
	}
	h.stop()
	// The records name the interpreter as the executable, not the script
	// the exec was given.
	for _, r := range h.audit.records(t) {
		if r.Decision == "deny" && strings.HasSuffix(r.Path, "secret/plan.txt") && strings.HasSuffix(r.Exe, ".sh") {
			t.Errorf("a deny record names the script as the executable: %+v", r)
		}
	}
}

// TestScriptsAreRefusedByTheFanotifyBackend: fanotify shows only a
// command line the process can rewrite, so a rule that names scripts is
// an error there, naming the rule, not a rule that never matches.
func TestScriptsAreRefusedByTheFanotifyBackend(t *testing.T) {
	testutil.RequireRoot(t)
	policyPath := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(policyPath, []byte(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: reports}
spec:
  files: {paths: ["/nonexistent/**"]}
  rules:
    - name: the-report-script
      operations: [open]
      subjects: {scripts: [/opt/app/report.py]}
      effect: allow
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Policies = []string{policyPath}
	cfg.Backend = config.BackendFanotify
	cfg.Audit.File, cfg.MetricsAddress, cfg.StatusSocket, cfg.AdminSocket = "", "", "", ""
	cfg.BPF.PinPath = ""
	_, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Env: &environ.Report{Hypervisor: "kvm", Cloud: "none", Container: "none"}})
	if err == nil || !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "the-report-script") || !strings.Contains(err.Error(), "subjects.scripts") {
		t.Fatalf("New with a scripts rule on fanotify: %v, want a policy error naming the rule and subjects.scripts", err)
	}
}

// onlyMayOpen is a policy named name on the files below dir that lets
// only the processes subjects (a YAML flow mapping) selects open them.
func onlyMayOpen(name, dir, subjects string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: %s}
spec:
  files:
    paths: ["%s/**"]
  rules:
    - name: they-may-open
      operations: [open]
      subjects: %s
      effect: allow
    - name: others-may-not-open
      operations: [open]
      effect: deny
`, name, dir, subjects)
}
