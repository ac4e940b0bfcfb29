package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/proc"
)

// Hypervisor storage processes: they open disk images all day, and
// deciding and auditing each open is noise (the reference design skips
// VHDX files opened by Hyper-V's storage processes the same way).
var hypervisorExecutables = []string{
	"/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-system-aarch64", "/usr/bin/qemu-system-i386",
	"/usr/bin/qemu-kvm", "/usr/libexec/qemu-kvm", "/usr/bin/qemu-img", "/usr/bin/qemu-nbd",
	"/usr/sbin/libvirtd", "/usr/sbin/virtqemud", "/usr/sbin/virtstoraged",
	"/usr/lib/virtualbox/VBoxHeadless", "/usr/lib/virtualbox/VBoxSVC", "/usr/lib/virtualbox/VirtualBoxVM",
	"/usr/lib/vmware/bin/vmware-vmx", "/usr/bin/vmware-vmx",
	"/usr/bin/firecracker", "/usr/local/bin/firecracker",
	"/usr/bin/cloud-hypervisor", "/usr/local/bin/cloud-hypervisor",
	"/usr/bin/crosvm", "/usr/local/bin/crosvm",
}

var diskImageExtensions = []string{".vhd", ".vhdx", ".avhdx", ".vmdk", ".qcow2", ".qcow", ".vdi", ".img", ".raw", ".iso"}

// exemption recognises hypervisor processes by executable identity: the
// process's executable must be the very file (device and inode) installed
// at one of the known paths, so a copy of another program named
// qemu-system-x86_64 elsewhere, or a renamed process, is not exempt.
type exemption struct {
	enabled bool
	exes    []string
	exts    []string
	root    string
}

func newExemption(cfg config.Config) *exemption {
	e := &exemption{enabled: cfg.ExemptionEnabled(), root: cfg.HostRoot}
	e.exes = append(append(e.exes, hypervisorExecutables...), cfg.HypervisorExemption.Executables...)
	e.exts = diskImageExtensions
	if len(cfg.HypervisorExemption.Extensions) > 0 {
		e.exts = cfg.HypervisorExemption.Extensions
	}
	return e
}

func (e *exemption) isImage(path string) bool {
	lower := strings.ToLower(path)
	for _, ext := range e.exts {
		if strings.HasSuffix(lower, strings.ToLower(ext)) {
			return true
		}
	}
	return false
}

// applies reports whether p opening path is exempt.
func (e *exemption) applies(p *proc.Process, path string) bool {
	if !e.enabled || !e.isImage(path) {
		return false
	}
	listed := false
	for _, x := range e.exes {
		if x == p.Exe {
			listed = true
			break
		}
	}
	if !listed {
		return false
	}
	fi, err := os.Stat(filepath.Join(e.root, p.Exe))
	if err != nil {
		return false
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return uint64(sys.Dev) == p.ExeID.Dev && sys.Ino == p.ExeID.Ino
}
