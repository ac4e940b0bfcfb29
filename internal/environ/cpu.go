package environ

import "errors"

// ErrNotSupported is returned where the platform has no way to answer, such
// as CPUID outside Linux on x86.
var ErrNotSupported = errors.New("not supported on this platform")

// CPUInfo is what the processor itself says about virtualization.
type CPUInfo struct {
	// HypervisorBit is CPUID leaf 1 ECX bit 31, set by every hypervisor
	// that admits to being one.
	HypervisorBit bool `json:"hypervisor_bit"`
	// HypervisorVendor is the 12-byte signature at CPUID leaf 0x40000000
	// (EBX, ECX, EDX), trailing NULs removed, such as "KVMKVMKVM" or
	// "Microsoft Hv". Empty when HypervisorBit is clear.
	HypervisorVendor string `json:"hypervisor_vendor,omitempty"`
	// VMX is Intel VT-x (leaf 1 ECX bit 5) as offered to this machine.
	VMX bool `json:"vmx"`
	// SVM is AMD-V (leaf 0x80000001 ECX bit 2) as offered to this machine.
	SVM bool `json:"svm"`
}

// CPU supplies CPUInfo: LiveCPU on a real machine, FixedCPU for a fixture or
// a captured tree.
type CPU interface {
	Info() (CPUInfo, error)
}

// FixedCPU is a CPU that always answers the same.
type FixedCPU CPUInfo

// Info returns f unchanged.
func (f FixedCPU) Info() (CPUInfo, error) { return CPUInfo(f), nil }

// VendorCPU is the CPU of `drmfilter env --root --cpuid-vendor V`: the
// hypervisor bit is set exactly when vendor is not empty.
func VendorCPU(vendor string) CPU {
	return FixedCPU{HypervisorBit: vendor != "", HypervisorVendor: vendor}
}
