//go:build !linux

package environ

import "fmt"

type liveCPU struct{}

// LiveCPU is only implemented on Linux; elsewhere Info fails with
// ErrNotSupported and detection relies on files alone.
func LiveCPU() CPU { return liveCPU{} }

func (liveCPU) Info() (CPUInfo, error) {
	return CPUInfo{}, fmt.Errorf("cpuid: %w", ErrNotSupported)
}
