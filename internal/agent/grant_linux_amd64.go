package agent

import "golang.org/x/sys/unix"

// i386 numbers of the open calls, which a 32-bit process on amd64 shows
// in /proc/PID/task/TID/syscall. In the 64-bit table the same numbers are
// fstat, lseek, preadv and a free slot: calls a thread is almost never
// found stopped in, so counting them as opens costs nearly nothing and
// keeps a 32-bit sibling from taking a grant.
const (
	i386Open           = 5
	i386Creat          = 8
	i386Openat         = 295
	i386OpenByHandleAt = 342
)

// legacyOpen: the open calls amd64 has besides openat, and the i386 ones.
func legacyOpen(nr int) bool {
	switch nr {
	case unix.SYS_OPEN, unix.SYS_CREAT, i386Open, i386Creat, i386Openat, i386OpenByHandleAt:
		return true
	}
	return false
}
