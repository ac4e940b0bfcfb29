//go:build linux && (amd64 || arm64 || riscv64)

package proc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// statPath is stat(2) of a NUL-terminated path, following symlinks (and
// the /proc/PID/exe magic link).
func statPath(path []byte, st *unix.Stat_t) error {
	cwd := unix.AT_FDCWD // a variable: the constant is negative
	for {
		_, _, errno := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(cwd),
			uintptr(unsafe.Pointer(&path[0])), uintptr(unsafe.Pointer(st)), 0, 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}
