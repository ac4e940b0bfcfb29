//go:build !linux

package nspath

import "fmt"

// keyOf fails off Linux: there are no mount namespaces.
func keyOf(procDir string, pid int) (viewKey, error) {
	return viewKey{}, fmt.Errorf("namespace of pid %d: %w", pid, ErrNotSupported)
}

// splitDev fails off Linux, where st_dev is encoded differently and no
// mountinfo exists to compare it with.
func splitDev(dev uint64) (uint32, uint32, error) {
	return 0, 0, fmt.Errorf("split device number: %w", ErrNotSupported)
}

// HostPath is not supported off Linux.
func (r *Resolver) HostPath(pid int, containerPath string) (File, error) {
	return File{}, &Error{Op: "host path", PID: pid, Path: containerPath, Err: ErrNotSupported}
}

// sameFile is never true off Linux.
func (r *Resolver) sameFile(pid int, containerPath string, dev, ino uint64) bool { return false }

// existsIn is never true off Linux.
func (r *Resolver) existsIn(viewPID int, p string, dev uint64) bool { return false }
