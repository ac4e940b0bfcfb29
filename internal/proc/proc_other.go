//go:build !linux

package proc

import "fmt"

// Lookup is not supported off Linux.
func (r *Resolver) Lookup(pid int32, pidfd int) (*Process, error) {
	return nil, fmt.Errorf("proc: lookup pid %d: %w", pid, ErrNotSupported)
}

// Forget does nothing off Linux.
func (r *Resolver) Forget(pid int32) {}

func (r *Resolver) hashExe(p *Process) ([32]byte, error) {
	return [32]byte{}, fmt.Errorf("read exe: %w", ErrNotSupported)
}
