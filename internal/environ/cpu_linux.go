//go:build linux

package environ

import (
	"strings"

	"github.com/klauspost/cpuid/v2"
)

type liveCPU struct{}

// LiveCPU reads this processor through CPUID (github.com/klauspost/cpuid/v2,
// which probed the processor once at program start). On processors without
// CPUID (Arm, s390x...) every field is false and the hypervisor is found
// from files instead.
func LiveCPU() CPU { return liveCPU{} }

func (liveCPU) Info() (CPUInfo, error) {
	c := cpuid.CPU
	info := CPUInfo{
		HypervisorBit: c.Supports(cpuid.HYPERVISOR),
		VMX:           c.Supports(cpuid.VMX),
		SVM:           c.Supports(cpuid.SVM),
	}
	if info.HypervisorBit {
		info.HypervisorVendor = strings.TrimRight(c.HypervisorVendorString, "\x00")
	}
	return info, nil
}
