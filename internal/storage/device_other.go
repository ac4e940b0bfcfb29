//go:build !linux

package storage

// blockDeviceOf is Linux-only: sysfs and /proc/PID/mountinfo exist only
// there. Elsewhere no device is found.
func blockDeviceOf(root, source string) (major, minor uint32, ok bool) {
	return 0, 0, false
}
