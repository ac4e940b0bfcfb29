package nspath

import (
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls that key the cache run on every ContainerPath call, so
// they are made directly, with paths built in stack buffers: the x/sys/unix
// wrappers take string paths and allocate a C string per call. Each
// wrapper retries EINTR, which the signals of the Go runtime's preemption
// can cause on any interruptible call; a retry is always safe for these.

// appendProcPath appends "<procDir><pid>/<name>\x00" (pid 0: "self") to b.
// procDir ends with a slash.
func appendProcPath(b []byte, procDir string, pid int, name string) []byte {
	b = append(b, procDir...)
	if pid == 0 {
		b = append(b, "self"...)
	} else {
		b = strconv.AppendInt(b, int64(pid), 10)
	}
	b = append(b, '/')
	b = append(b, name...)
	return append(b, 0)
}

// keyOf identifies the view of pid (0: the reader itself) under procDir:
// the inode number of its mount namespace (mount_namespaces(7)) and the
// device and inode of its root directory. The namespace comes from
// readlink(2) of /proc/PID/ns/mnt ("mnt:[4026531841]"), which costs about
// half a stat(2) of it (the stat instantiates the nsfs dentry); the root
// from statx(2) of /proc/PID/root, which follows the magic link to the
// directory.
func keyOf(procDir string, pid int) (viewKey, error) {
	var pathBuf [256]byte
	p := appendProcPath(pathBuf[:0], procDir, pid, "ns/mnt")
	var linkBuf [64]byte
	n, err := readlinkPath(p, linkBuf[:])
	if err != nil {
		// string() copies: the buffers stay on the stack.
		return viewKey{}, fmt.Errorf("readlink %s: %w", string(p[:len(p)-1]), err)
	}
	ino, ok := parseNsLink(linkBuf[:n])
	if !ok {
		return viewKey{}, fmt.Errorf("readlink %s: %q is not a mount namespace", string(p[:len(p)-1]), string(linkBuf[:n]))
	}
	p = appendProcPath(pathBuf[:0], procDir, pid, "root")
	var stx unix.Statx_t
	if err := statxPath(p, &stx); err != nil {
		return viewKey{}, fmt.Errorf("stat %s: %w", string(p[:len(p)-1]), err)
	}
	return viewKey{ns: ino, rootDev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), rootIno: stx.Ino}, nil
}

// parseNsLink parses "mnt:[N]" without allocating.
func parseNsLink(b []byte) (uint64, bool) {
	const prefix = "mnt:["
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != ']' {
		return 0, false
	}
	var n uint64
	for _, c := range b[len(prefix) : len(b)-1] {
		d := uint64(c - '0')
		if c < '0' || c > '9' || n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// readlinkPath is readlink(2) of a NUL-terminated path into buf.
func readlinkPath(path, buf []byte) (int, error) {
	cwd := unix.AT_FDCWD // a variable: the constant is negative
	for {
		n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(cwd),
			uintptr(unsafe.Pointer(&path[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

// statxPath is statx(2) of a NUL-terminated path, following symlinks and
// magic links, asking for the inode number (the device is always filled).
// statx exists on every architecture, unlike newfstatat.
func statxPath(path []byte, stx *unix.Statx_t) error {
	cwd := unix.AT_FDCWD
	for {
		_, _, errno := unix.Syscall6(unix.SYS_STATX, uintptr(cwd),
			uintptr(unsafe.Pointer(&path[0])), 0, uintptr(unix.STATX_INO), uintptr(unsafe.Pointer(stx)), 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}
