package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Main runs the tests of m. Call it from TestMain. As the guest's PID 1
// (the initramfs holds the guest's instructions) it sets the guest up,
// runs the tests in a child process, reports and powers off, never
// returning; anywhere else it is os.Exit(m.Run()).
func Main(m *testing.M) { MainFunc(m, m.Run) }

// MainFunc is Main for a package whose TestMain runs its tests through a
// wrapper of m.Run (a check for leaked descriptors, say): run is called
// where Main would call m.Run.
func MainFunc(m *testing.M, run func() int) {
	if os.Getpid() == 1 {
		if _, err := os.Stat(configPath); err == nil {
			initMain() // does not return
		}
	}
	os.Exit(run())
}

// initMain is the guest's PID 1. Whatever happens it prints the result
// line and powers off: a PID 1 that exits or hangs would leave the host
// waiting for its timeout with no reason.
func initMain() {
	// The console is the only channel to the host; the kernel may not
	// have been able to open it for init before devtmpfs was mounted.
	nonce := "unknown"
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "guest init: panic: %v\n", r)
			report(nonce, exitPanic)
		}
	}()
	cfg, err := readConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest init: %v\n", err)
		report(nonce, exitSetup)
	}
	nonce = cfg.Nonce
	if err := setUp(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "guest init: %v\n", err)
		report(nonce, exitSetup)
	}
	code, err := runTests(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "guest init: %v\n", err)
		code = exitSetup
	}
	report(nonce, code)
}

func readConfig() (guestConfig, error) {
	var cfg guestConfig
	b, err := os.ReadFile(configPath)
	if err != nil {
		return cfg, fmt.Errorf("read guest config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("parse guest config %s: %w", configPath, err)
	}
	return cfg, nil
}

// mount is one filesystem PID 1 mounts before the tests run.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// guestMounts are mounted in order (sysfs before the filesystems mounted
// below /sys): what the kernel-facing tests expect of a machine.
func guestMounts() []mount {
	return []mount{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666"},
		{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"securityfs", "/sys/kernel/security", "securityfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0700"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		// tracefs gives bpf_printk's trace_pipe to a test being debugged.
		{"tracefs", "/sys/kernel/tracing", "tracefs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	}
}

// setUp mounts the pseudo filesystems, points stdio at the console and
// loads the kernel modules.
func setUp(cfg guestConfig) error {
	for _, m := range guestMounts() {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
		if m.target == "/dev" {
			if err := openConsole(); err != nil {
				return err
			}
		}
	}
	for _, path := range cfg.Modules {
		if err := loadModule(path); err != nil {
			return err
		}
	}
	return nil
}

// openConsole makes /dev/console this process's stdin, stdout and stderr.
func openConsole() error {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	for target := 0; target < 3; target++ {
		if err := unix.Dup2(fd, target); err != nil {
			return fmt.Errorf("dup /dev/console to fd %d: %w", target, err)
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
	return nil
}

// loadModule loads a kernel module file. Debian's modules are compressed
// (.ko.xz) and the kernel decompresses them itself
// (CONFIG_MODULE_DECOMPRESS), so no decompressor is needed in the guest.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(path, ".ko") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), "", flags); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", filepath.Base(path), err)
	}
	return nil
}

// runTests runs this binary again as a child with the test flags and
// returns its exit code. PID 1 reaps every orphan meanwhile (tests start
// daemons), so it waits for any child and picks out the test process.
func runTests(cfg guestConfig) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("start tests: %w", err)
	}
	if err := os.MkdirAll(WorkDir, 0o755); err != nil {
		return 0, fmt.Errorf("start tests: %w", err)
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"TMPDIR=/tmp",
		"TERM=dumb",
		inGuestEnv + "=1",
	}
	proc, err := os.StartProcess(self, append([]string{self}, cfg.Args...), &os.ProcAttr{
		Dir:   WorkDir,
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return 0, fmt.Errorf("start tests: %w", err)
	}
	for {
		var status unix.WaitStatus
		pid, err := unix.Wait4(-1, &status, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue // a signal to PID 1 interrupted the wait; wait again
		}
		if err != nil {
			return 0, fmt.Errorf("wait for tests: %w", err)
		}
		if pid != proc.Pid {
			continue // an orphan reparented to PID 1
		}
		switch {
		case status.Exited():
			return status.ExitStatus(), nil
		case status.Signaled():
			fmt.Fprintf(os.Stderr, "guest init: tests killed by %v\n", status.Signal())
			return 128 + int(status.Signal()), nil
		}
	}
}

// report prints the result line on the console and powers off. If the
// power-off fails, PID 1 exits: the kernel panics, panic=-1 reboots and
// qemu's -no-reboot turns that into qemu's exit.
func report(nonce string, code int) {
	// The leading newline ends a line the tests or the kernel left open.
	fmt.Fprintf(os.Stdout, "\n%s %s exit=%d\n", resultMarker, nonce, code)
	os.Stdout.Sync()
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Fprintf(os.Stderr, "guest init: power off: %v\n", err)
	os.Exit(code)
}
