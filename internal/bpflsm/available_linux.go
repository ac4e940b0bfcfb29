package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Availability says whether this kernel runs BPF LSM programs, and if not,
// what is missing.
type Availability struct {
	OK     bool     `json:"available"`
	Reason string   `json:"reason"`        // why not, or what was checked
	Fix    string   `json:"fix,omitempty"` // what an administrator can do
	LSMs   []string `json:"lsms,omitempty"`
	BTF    bool     `json:"btf"`
}

const (
	lsmFile = "/sys/kernel/security/lsm"
	btfFile = "/sys/kernel/btf/vmlinux"
)

// Probe finds out whether BPF LSM programs can be used here: `bpf` in the
// active LSM list, the kernel's BTF, and a program that loads and attaches
// (some kernels list bpf and still refuse, for instance under a
// hypervisor's or a distribution's lockdown). It needs the privileges the
// agent has; securityfs is mounted at its usual place if it is not.
func Probe() Availability {
	var a Availability
	lsms, err := readLSMs()
	if err != nil {
		a.Reason = fmt.Sprintf("cannot read the active LSM list: %v", err)
		return a
	}
	a.LSMs = lsms
	if _, err := os.Stat(btfFile); err == nil {
		a.BTF = true
	}
	if !slices.Contains(lsms, "bpf") {
		a.Reason = fmt.Sprintf("bpf is not in the active LSM list (%s)", strings.Join(lsms, ","))
		a.Fix = fmt.Sprintf("boot with lsm=%s,bpf (on Debian and Ubuntu: add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot); the kernel must be built with CONFIG_BPF_LSM=y", strings.Join(lsms, ","))
		return a
	}
	if !a.BTF {
		a.Reason = "the kernel has no BTF (" + btfFile + ")"
		a.Fix = "use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
		return a
	}
	if err := tryLSM(); err != nil {
		a.Reason = "the kernel refused a BPF LSM program: " + err.Error()
		if errors.Is(err, unix.EPERM) {
			a.Fix = "the kernel lists bpf but does not let LSM programs load (lockdown, a hypervisor's policy or missing CAP_BPF/CAP_SYS_ADMIN and CAP_MAC_ADMIN); use the fanotify backend"
		}
		return a
	}
	a.OK = true
	a.Reason = "bpf is in the active LSM list, the kernel has BTF and an LSM program loaded and attached"
	return a
}

func readLSMs() ([]string, error) {
	b, err := os.ReadFile(lsmFile)
	if errors.Is(err, os.ErrNotExist) {
		// securityfs is not mounted (systemd mounts it; a container or a
		// minimal init may not).
		if merr := unix.Mount("securityfs", "/sys/kernel/security", "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); merr != nil {
			return nil, fmt.Errorf("%w (mounting securityfs: %v)", err, merr)
		}
		b, err = os.ReadFile(lsmFile)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// tryLSM loads and attaches a program that allows every open, and
// detaches it at once.
func tryLSM() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise the locked-memory limit: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "drmfilter_probe", Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_open",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, License: "GPL",
	})
	if errors.Is(err, unix.EPERM) {
		// cilium/ebpf adds a hint about RLIMIT_MEMLOCK to EPERM, which
		// was raised above: the kernel itself refused.
		return fmt.Errorf("load: %w", unix.EPERM)
	}
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	return l.Close()
}
