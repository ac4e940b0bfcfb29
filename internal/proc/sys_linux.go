package proc

import (
	"errors"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls on the cache-hit path are made directly, with paths
// built in caller-owned byte buffers, because the x/sys/unix wrappers take
// string paths and allocate a C string for each call. Every wrapper here
// retries EINTR: these calls can be interrupted by the signals the Go
// runtime uses for preemption, and a retry is always safe for them.

// procPath builds "<root>/proc/<pid>/<name>\x00" into b[:0].
func (r *Resolver) procPath(b []byte, pid int32, name string) []byte {
	b = append(b[:0], r.procDir...)
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, '/')
	b = append(b, name...)
	return append(b, 0)
}

// taskPath builds "<root>/proc/<pid>/task/<tid>/<name>\x00" into b[:0],
// or procPath's path when tid is 0.
func (r *Resolver) taskPath(b []byte, pid, tid int32, name string) []byte {
	if tid == 0 {
		return r.procPath(b, pid, name)
	}
	b = append(b[:0], r.procDir...)
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "/task/"...)
	b = strconv.AppendInt(b, int64(tid), 10)
	b = append(b, '/')
	b = append(b, name...)
	return append(b, 0)
}

// openPath is open(2) of a NUL-terminated path, read-only, close-on-exec.
func openPath(path []byte) (int, error) {
	cwd := unix.AT_FDCWD
	for {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd),
			uintptr(unsafe.Pointer(&path[0])), uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, errno
	}
}

// readPath reads a whole (small, /proc) file into buf and returns the
// filled part. A file that does not fit fails with ENOBUFS, so callers
// can retry with a larger buffer.
func readPath(path []byte, buf []byte) ([]byte, error) {
	fd, err := openPath(path)
	if err != nil {
		return nil, err
	}
	// close(2) is not retried: Linux releases the descriptor even on EINTR.
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			return nil, unix.ENOBUFS
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

// fstatFd is fstat(2).
func fstatFd(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if err != unix.EINTR {
			return err
		}
	}
}

// pidfsMagic is PIDFS_MAGIC (include/uapi/linux/magic.h), the f_type of a
// pidfd on Linux 6.9 and later.
const pidfsMagic = 0x50494446

// onPidfs reports whether pidfd lives on pidfs, whose inode numbers are
// unique per process.
func onPidfs(pidfd int) (bool, error) {
	var sf unix.Statfs_t
	for {
		err := unix.Fstatfs(pidfd, &sf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		return sf.Type == pidfsMagic, nil
	}
}

// pidfdInfo is struct pidfd_info as of Linux 6.13 (PIDFD_INFO_SIZE_VER0,
// 64 bytes; include/uapi/linux/pidfd.h).
type pidfdInfo struct {
	Mask                     uint64
	CgroupID                 uint64
	PID, TGID, PPID          uint32
	RUID, RGID, EUID, EGID   uint32
	SUID, SGID, FSUID, FSGID uint32
	Spare                    uint32
}

const (
	pidfdInfoPID   = 1 << 0 // PIDFD_INFO_PID
	pidfdInfoCreds = 1 << 1 // PIDFD_INFO_CREDS
	// pidfdGetInfo is PIDFD_GET_INFO, _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11,
	// struct pidfd_info) with the 64-byte struct.
	pidfdGetInfo = 0xC040FF0B
)

// pidfdCreds returns the real uid and gid of the pidfd's process through
// PIDFD_GET_INFO. It fails with ESRCH when the process has exited, and
// with ENOTTY or EINVAL on kernels without the ioctl (before 6.13).
func pidfdCreds(pidfd int) (uid, gid uint32, err error) {
	info := pidfdInfo{Mask: pidfdInfoCreds}
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(pidfd), pidfdGetInfo, uintptr(unsafe.Pointer(&info)))
		switch errno {
		case 0:
			if info.Mask&pidfdInfoCreds == 0 {
				return 0, 0, unix.EINVAL
			}
			return info.RUID, info.RGID, nil
		case unix.EINTR:
			continue
		}
		return 0, 0, errno
	}
}

// pidfdAlive fails with ESRCH when the pidfd's process has exited
// (pidfd_send_signal(2) with signal 0 sends nothing).
func pidfdAlive(pidfd int) error {
	for {
		err := unix.PidfdSendSignal(pidfd, 0, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// gone reports whether err from a /proc/PID access means the process (or
// its PID) is no longer there.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

func exeIDOf(st *unix.Stat_t) ExeID {
	return ExeID{
		Dev:     uint64(st.Dev),
		Ino:     uint64(st.Ino),
		CtimeNs: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec),
		Size:    st.Size,
	}
}
