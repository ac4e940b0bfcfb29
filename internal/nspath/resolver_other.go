//go:build !linux

package nspath

import "fmt"

// statKey fails off Linux: there are no mount namespaces.
func statKey(nsFile, rootDir string) (viewKey, error) {
	return viewKey{}, fmt.Errorf("stat %s: %w", nsFile, ErrNotSupported)
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
