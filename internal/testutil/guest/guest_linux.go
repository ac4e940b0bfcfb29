package guest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// kernelCmdline is the guest kernel's command line before Options.Cmdline:
// the console on the first serial port (qemu's stdout); a panic reboots at
// once, which -no-reboot turns into qemu's exit, so a broken guest ends the
// run instead of hanging it; the LSM list of the machines drmfilter runs
// on, with bpf; quiet keeps the boot messages (the tests' log) short but
// still shows warnings and oopses.
const kernelCmdline = "console=ttyS0 panic=-1 lsm=lockdown,capability,landlock,bpf quiet"

// Run boots the guest and runs the calling package's tests in it (see the
// package comment), failing t unless they pass. Call it from a host test
// in the package directory, as `go test` runs tests. It skips t (fails it
// under CI=true) when root, qemu, cpio, busybox or the cached kernel is
// missing, and skips it inside the guest.
func Run(t *testing.T, opts Options) {
	t.Helper()
	if InGuest() {
		t.Skip("skipping: already inside the guest")
	}
	testutil.RequireRoot(t)
	qemu := lookTool(t, "qemu-system-x86_64", "the Debian package qemu-system-x86")
	cpio := lookTool(t, "cpio", "the Debian package cpio")
	busybox := lookTool(t, "busybox", "the Debian package busybox-static")
	kernel, release := findKernel(t, opts.Kernel)

	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
		if deadline, ok := t.Deadline(); ok && time.Until(deadline)-10*time.Second < timeout {
			// End before go test's -timeout, which would kill the run
			// with no word about the guest.
			timeout = max(time.Until(deadline)-10*time.Second, 30*time.Second)
		}
	}

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	start := time.Now()
	if err := buildTestBinary(filepath.Join(root, "init"), opts.Tags); err != nil {
		t.Fatalf("guest: %v", err)
	}
	built := time.Now()
	nonce, err := newNonce()
	if err != nil {
		t.Fatalf("guest: %v", err)
	}
	if run := os.Getenv(RunEnv); run != "" {
		t.Logf("guest: %s=%s replaces the -test.run pattern %q", RunEnv, run, opts.Run)
		opts.Run = run
	}
	cfg := guestConfig{Nonce: nonce, Args: testArgs(opts, timeout)}
	if cfg.Modules, err = stageModules(root, kernel, release, append([]string{"loop"}, opts.Modules...)); err != nil {
		t.Fatalf("guest: %v", err)
	}
	if err := stage(root, busybox, opts, cfg); err != nil {
		t.Fatalf("guest: %v", err)
	}
	initramfs := filepath.Join(dir, "initramfs.cpio")
	if err := packCpio(cpio, root, initramfs); err != nil {
		t.Fatalf("guest: %v", err)
	}
	// The staged tree is in the archive now; drop it before the boot.
	if err := os.RemoveAll(root); err != nil {
		t.Fatalf("guest: %v", err)
	}
	var size int64
	if fi, err := os.Stat(initramfs); err == nil {
		size = fi.Size()
	}
	accel, why := chooseAccel()
	t.Logf("guest: built in %v, packed in %v (initramfs %d MiB); booting %s with %s (%s), timeout %v",
		built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond),
		size>>20, release, accel, why, timeout)
	vmlinuz := filepath.Join(kernel, "vmlinuz")
	code, err := boot(t, qemu, qemuArgs(accel, vmlinuz, initramfs, opts), nonce, timeout)
	if errors.Is(err, errKVM) && os.Getenv(AccelEnv) == "" {
		t.Logf("guest: %v; booting again with TCG", err)
		accel = "tcg"
		code, err = boot(t, qemu, qemuArgs(accel, vmlinuz, initramfs, opts), nonce, timeout)
	}
	if errors.Is(err, errKernelPanic) {
		// Once: a second panic fails the test below.
		again := timeout
		if deadline, ok := t.Deadline(); ok {
			again = min(again, time.Until(deadline)-10*time.Second)
		}
		if again < time.Minute {
			t.Fatalf("guest: %v, and too little time is left to boot again", err)
		}
		t.Logf("guest: %v; booting once more, with %v, to tell a fault of the emulation from one the tests cause (the console above has the first run)", err, again.Round(time.Second))
		code, err = boot(t, qemu, qemuArgs(accel, vmlinuz, initramfs, opts), nonce, again)
	}
	if err != nil {
		t.Fatalf("guest: %v", err)
	}
	switch code {
	case 0:
	case exitSetup:
		t.Fatalf("guest: setting the guest up failed (exit %d); see the console above", code)
	case exitPanic:
		t.Fatalf("guest: the guest's init panicked (exit %d); see the console above", code)
	default:
		t.Fatalf("guest: the tests failed in the guest (exit %d); see the console above", code)
	}
}

// unavailable skips t with reason, or fails it under CI=true, where a
// missing prerequisite is a broken setup (internal/testutil's policy).
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if testutil.InCI() {
		t.Fatalf("CI=true but %s", reason)
	}
	t.Skip("skipping: " + reason)
}

// lookTool finds a host program the boot needs, or skips t.
func lookTool(t testing.TB, name, from string) string {
	t.Helper()
	path, err := lookProgram(name)
	if err != nil {
		unavailable(t, fmt.Sprintf("the guest tests need %s (from %s; scripts/test.sh installs it): %v", name, from, err))
	}
	return path
}

// lookProgram finds name in PATH and in the sbin directories, which a
// user's PATH may lack.
func lookProgram(name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("find program: %w", err)
		}
		return name, nil
	}
	dirs := filepath.SplitList(os.Getenv("PATH"))
	dirs = append(dirs, "/usr/local/sbin", "/usr/sbin", "/sbin")
	for _, d := range dirs {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find program: %s is not in PATH or the sbin directories", name)
}

// findKernel returns the kernel directory and its release, or skips t.
func findKernel(t testing.TB, dir string) (string, string) {
	t.Helper()
	if dir == "" {
		dir = os.Getenv(KernelEnv)
	}
	if dir == "" {
		cache := os.Getenv(CacheEnv)
		if cache == "" {
			cache = "/var/cache/drmfilter"
		}
		dir = filepath.Join(cache, "guest-kernel", KernelRelease)
	}
	hint := "run .ci/guest-kernel.sh and set " + KernelEnv + " to the directory it prints (scripts/test.sh does both)"
	if _, err := os.Stat(filepath.Join(dir, "vmlinuz")); err != nil {
		unavailable(t, fmt.Sprintf("no guest kernel in %s (%v): %s", dir, err, hint))
	}
	entries, err := os.ReadDir(filepath.Join(dir, "lib", "modules"))
	if err != nil || len(entries) != 1 {
		unavailable(t, fmt.Sprintf("no single lib/modules/<release> in %s (%v): %s", dir, err, hint))
	}
	return dir, entries[0].Name()
}

// buildTestBinary builds the test binary of the package in the current
// directory (go test's working directory is the package's), statically:
// the initramfs has no C library for it.
func buildTestBinary(out string, tags []string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build test binary: %w", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build test binary: %w", err)
	}
	args := []string{"test", "-c", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, ".")
	cmd := exec.Command(goTool, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build test binary: go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// testArgs are the test binary's flags in the guest. Its own -test.timeout
// ends before the boot's, so that a stuck test gets Go's goroutine dump on
// the console rather than just a killed qemu; -test.paniconexit0 makes a
// test calling os.Exit(0) fail, as under go test.
func testArgs(opts Options, timeout time.Duration) []string {
	guestTimeout := timeout - 30*time.Second
	if guestTimeout < timeout/2 {
		guestTimeout = timeout / 2
	}
	args := []string{"-test.timeout=" + guestTimeout.String(), "-test.paniconexit0"}
	if opts.Run != "" {
		args = append(args, "-test.run="+opts.Run)
	}
	if opts.Verbose {
		args = append(args, "-test.v")
	}
	return args
}

// stageModules copies the named modules into root at their guest path and
// returns those paths in load order, leaving out modules built into the
// kernel.
func stageModules(root, kernel, release string, names []string) ([]string, error) {
	modDir := filepath.Join(kernel, "lib", "modules", release)
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			builtin[moduleName(line)] = true
		}
	}
	files := map[string]string{} // module name -> path relative to modDir
	err := filepath.WalkDir(filepath.Join(modDir, "kernel"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			rel, err := filepath.Rel(modDir, path)
			if err != nil {
				return err
			}
			files[moduleName(d.Name())] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list kernel modules: %w", err)
	}
	var paths []string
	for _, name := range names {
		n := strings.ReplaceAll(name, "-", "_")
		if builtin[n] {
			continue
		}
		rel, ok := files[n]
		if !ok {
			return nil, fmt.Errorf("kernel module %s: not in %s", name, modDir)
		}
		guestPath := filepath.Join("/lib/modules", release, rel)
		if slices.Contains(paths, guestPath) {
			continue
		}
		if err := copyFile(filepath.Join(modDir, rel), filepath.Join(root, guestPath)); err != nil {
			return nil, fmt.Errorf("kernel module %s: %w", name, err)
		}
		paths = append(paths, guestPath)
	}
	return paths, nil
}

// moduleName turns "kernel/drivers/block/loop.ko.xz" into "loop", with
// dashes as underscores, as the kernel names modules.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// stage fills root (which holds /init and the modules already) with
// busybox and its applets, the requested programs and their libraries, the
// fixtures and the guest's instructions.
func stage(root, busybox string, opts Options, cfg guestConfig) error {
	for _, name := range opts.Programs {
		path, err := lookProgram(name)
		if err != nil {
			return err
		}
		if err := stageProgram(root, path); err != nil {
			return err
		}
	}
	if err := stageProgram(root, busybox); err != nil {
		return err
	}
	// Busybox's applets (sh, mount, losetup, insmod, ...) as links to it,
	// where no real program was staged.
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("list busybox applets: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		link := filepath.Join(root, applet)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return fmt.Errorf("stage busybox applets: %w", err)
		}
		if err := os.Symlink(busybox, link); err != nil {
			return fmt.Errorf("stage busybox applets: %w", err)
		}
	}
	for host, guest := range opts.Extra {
		if !filepath.IsAbs(guest) {
			guest = filepath.Join(WorkDir, guest)
		}
		if err := copyTree(host, filepath.Join(root, guest)); err != nil {
			return fmt.Errorf("stage %s: %w", host, err)
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("stage guest config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, configPath), b, 0o644); err != nil {
		return fmt.Errorf("stage guest config: %w", err)
	}
	return nil
}

// stageProgram copies a host program to the same path in root, with the
// shared libraries and the loader it needs at their host paths.
func stageProgram(root, path string) error {
	files := []string{path}
	libs, err := sharedLibraries(path)
	if err != nil {
		return err
	}
	files = append(files, libs...)
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(root, f)); err == nil {
			continue
		}
		if err := copyFile(f, filepath.Join(root, f)); err != nil {
			return fmt.Errorf("stage %s: %w", path, err)
		}
	}
	return nil
}

// lddLine matches ldd's "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6
// (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
var lddLine = regexp.MustCompile(`^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$`)

// sharedLibraries lists what a dynamically linked program loads, by ldd;
// a static program (no ELF interpreter) needs nothing.
func sharedLibraries(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if !dynamic {
		return nil, nil
	}
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	var libs []string
	for line := range strings.Lines(string(out)) {
		if m := lddLine.FindStringSubmatch(line); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs, nil
}

// copyFile copies src's content (through symlinks) to dst, keeping its
// permission bits and making dst's directory.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a file, or a directory with what is below it (symlinks
// as symlinks), to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return copyFile(path, target)
		}
	})
}

// packCpio writes the tree below root as an uncompressed newc cpio
// archive, owned by root: uncompressed because the kernel unpacks it
// faster than it would decompress it, and it only lives for one boot.
func packCpio(cpio, root, out string) error {
	var list bytes.Buffer
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		list.WriteString(rel)
		list.WriteByte(0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("pack initramfs: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("pack initramfs: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(cpio, "--null", "--create", "--format=newc", "--owner=0:0", "--quiet")
	cmd.Dir = root
	cmd.Stdin = &list
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pack initramfs: cpio: %w: %s", err, stderr.Bytes())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pack initramfs: %w", err)
	}
	return nil
}

// AccelEnv names the environment variable that forces qemu's accelerator,
// "kvm" or "tcg", instead of Run's choice.
const AccelEnv = "DRMFILTER_GUEST_ACCEL"

// KVM ioctls (linux/kvm.h): _IO(0xAE, 0x00) and _IO(0xAE, 0x01).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// chooseAccel picks KVM if this host can create a KVM virtual machine (it
// tries to) with hardware virtualization, else TCG, and says why.
func chooseAccel() (string, string) {
	switch v := os.Getenv(AccelEnv); v {
	case "kvm", "tcg":
		return v, "set by " + AccelEnv
	}
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "tcg", fmt.Sprintf("no KVM: %v", err)
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil || v != kvmAPIVersion {
		return "tcg", fmt.Sprintf("no KVM: API version %d, %v", v, err)
	}
	vm, err := unix.IoctlRetInt(fd, kvmCreateVM)
	if err != nil {
		return "tcg", fmt.Sprintf("no KVM: create VM: %v", err)
	}
	unix.Close(vm)
	// Some cloud VMs offer KVM without hardware virtualization, through
	// kvm-pvm (page-table based, software nesting). It creates VMs, but a
	// stock kernel dies in it: "KVM internal error ... emulation failure"
	// in the kernel's decompressor, measured with Debian's 6.18 kernel.
	_, errIntel := os.Stat("/sys/module/kvm_intel")
	_, errAMD := os.Stat("/sys/module/kvm_amd")
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil && errIntel != nil && errAMD != nil {
		return "tcg", "KVM here is kvm-pvm, which cannot run a stock kernel"
	}
	return "kvm", "/dev/kvm creates VMs"
}

// errKVM is a boot that failed in KVM itself, before the guest ran: Run
// then boots again with TCG.
var errKVM = errors.New("qemu's KVM acceleration failed")

// errKernelPanic is a boot whose guest kernel panicked before the tests
// reported: Run boots once more, so that a fault of the emulation (a
// guest kernel crash seen once, under TCG on a loaded host, in the
// verifier with a corrupted interrupt frame) is told from one the tests
// cause, which panics again.
var errKernelPanic = errors.New("the guest kernel panicked")

// kernelPanic matches the kernel's last words.
var kernelPanic = regexp.MustCompile(`Kernel panic - not syncing`)

// kvmFailure matches what qemu prints when KVM cannot run the guest: an
// emulation failure (after which qemu pauses the guest for ever) or an MSR
// or CPU setting the host's KVM refuses.
var kvmFailure = regexp.MustCompile(`KVM internal error|kvm_buf_set_msrs|failed to set MSR|kvm: |KVM: `)

// qemuArgs is the qemu command line: no devices but the serial console
// (qemu's stdout) and the ACPI power button PID 1 powers off with.
func qemuArgs(accel, vmlinuz, initramfs string, opts Options) []string {
	mem := opts.MemoryMiB
	if mem <= 0 {
		mem = 1024
	}
	// Under TCG one vCPU on one thread is what was measured to work
	// (MACHINE-NOTES); under KVM two vCPUs let tests race.
	// qemu's "max" CPU under KVM asks for MSRs a nested KVM may refuse;
	// "host" passes what KVM offers.
	accelArg, cpu, smp := "kvm", "host", "2"
	if accel != "kvm" {
		accelArg, cpu, smp = "tcg,thread=single", "max", "1"
	}
	cmdline := kernelCmdline
	if opts.Cmdline != "" {
		cmdline += " " + opts.Cmdline
	}
	return []string{
		"-nodefaults", "-no-user-config",
		"-nographic", "-serial", "stdio", "-monitor", "none",
		"-no-reboot",
		"-accel", accelArg, "-cpu", cpu, "-smp", smp,
		"-m", strconv.Itoa(mem),
		"-kernel", vmlinuz, "-initrd", initramfs,
		"-append", cmdline,
	}
}

// boot runs qemu until it exits or the timeout, logging the console into
// t, and returns the exit code in the guest's result line. qemu is always
// gone when it returns.
func boot(t *testing.T, qemu string, args []string, nonce string, timeout time.Duration) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("boot: %w", err)
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdout, cmd.Stderr = w, w
	// If the test process dies, qemu dies with it instead of running on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("boot: start qemu: %w", err)
	}
	w.Close()

	marker := regexp.MustCompile(regexp.QuoteMeta(resultMarker+" "+nonce) + ` exit=(\d+)`)
	code := -1
	var kvmErr string
	panicked := false
	var tail []string // the last lines, repeated in the error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := printable(sc.Text())
		t.Log("guest: " + line)
		if m := marker.FindStringSubmatch(line); m != nil {
			code, _ = strconv.Atoi(m[1])
		}
		if code < 0 && kernelPanic.MatchString(line) {
			panicked = true
		}
		if code < 0 && kvmErr == "" && kvmFailure.MatchString(line) {
			// qemu stops the guest but keeps running: end it now.
			kvmErr = line
			_ = cmd.Process.Kill()
		}
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
	}
	// The console ends when qemu exits or is killed on the timeout; a read
	// error kills it here.
	_ = cmd.Process.Kill()
	waitErr := cmd.Wait()
	elapsed := time.Since(start).Round(time.Millisecond)
	switch {
	case kvmErr != "":
		return 0, fmt.Errorf("boot: %w: %s", errKVM, kvmErr)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return 0, fmt.Errorf("boot: no result after %v: killed qemu (pid %d)", timeout, cmd.Process.Pid)
	case sc.Err() != nil:
		return 0, fmt.Errorf("boot: read console: %w", sc.Err())
	case code < 0 && panicked:
		return 0, fmt.Errorf("boot: %w after %v; last lines:\n%s", errKernelPanic, elapsed, strings.Join(tail, "\n"))
	case code < 0:
		return 0, fmt.Errorf("boot: qemu exited (%v) after %v without a result line; last lines:\n%s",
			waitErr, elapsed, strings.Join(tail, "\n"))
	}
	t.Logf("guest: qemu ran %v; the guest's tests exited %d", elapsed, code)
	return code, nil
}

// escape matches the terminal control sequences SeaBIOS and the kernel
// print (cursor moves, screen clears, a terminal reset).
var escape = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_]|c)`)

// printable is a console line without terminal control sequences and
// control characters, fit for the test log.
func printable(line string) string {
	line = escape.ReplaceAllString(line, "")
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, line)
}
