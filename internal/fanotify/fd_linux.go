package fanotify

import (
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PathOf reads the path of the open file fd (readlink of /proc/self/fd/N)
// into buf and returns the filled part of buf. It does not allocate. A path
// that does not fit in buf fails with ENAMETOOLONG; unix.PathMax bytes
// always suffice. The kernel appends " (deleted)" to the path of a file
// that has been unlinked, and a path is only a name: decide on identity
// (Stat) where it matters.
func PathOf(fd int32, buf []byte) ([]byte, error) {
	if len(buf) == 0 {
		return nil, &Error{Op: "readlink", Errno: unix.EINVAL}
	}
	var p [32]byte // "/proc/self/fd/" + int32 + NUL
	name := append(p[:0], "/proc/self/fd/"...)
	name = strconv.AppendInt(name, int64(fd), 10)
	name = append(name, 0)
	var (
		n     uintptr
		errno syscall.Errno
		cwd   = unix.AT_FDCWD
	)
	for {
		// readlinkat(2) directly: unix.Readlink takes a string path and
		// would allocate for it.
		n, _, errno = unix.Syscall6(unix.SYS_READLINKAT, uintptr(cwd),
			uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		// Retried for the same reason as ignoringEINTR.
		if errno != unix.EINTR {
			break
		}
	}
	if errno != 0 {
		return nil, &Error{Op: "readlink", Errno: errno}
	}
	if int(n) >= len(buf) {
		// readlink truncates silently; a full buffer may be a cut path.
		return nil, &Error{Op: "readlink", Errno: unix.ENAMETOOLONG}
	}
	return buf[:n], nil
}

// Stat returns the identity of the open file fd (fstat(2)).
func Stat(fd int32) (FileStat, error) {
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstat(int(fd), &st) })
	if err != nil {
		errno, _ := err.(syscall.Errno)
		return FileStat{}, &Error{Op: "fstat", Errno: errno}
	}
	return FileStat{
		Dev:   uint64(st.Dev),
		Ino:   uint64(st.Ino),
		Nlink: uint64(st.Nlink),
		Mode:  st.Mode,
		Uid:   st.Uid,
		Gid:   st.Gid,
		Size:  st.Size,
		Ctime: Timespec{Sec: int64(st.Ctim.Sec), Nsec: int64(st.Ctim.Nsec)},
	}, nil
}

// closeFd closes a descriptor an Event owns. close(2) is not retried on
// EINTR: Linux releases the descriptor even then, and a retry could close
// a descriptor another goroutine has just been given.
func closeFd(fd int32) error {
	if err := unix.Close(int(fd)); err != nil {
		errno, _ := err.(syscall.Errno)
		return &Error{Op: "close", Errno: errno}
	}
	return nil
}

// errnoNotSupported reports whether errno means a missing kernel feature.
func errnoNotSupported(errno syscall.Errno) bool {
	return errno == unix.ENOSYS || errno == unix.EOPNOTSUPP
}
