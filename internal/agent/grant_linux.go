package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// onlyExecOpens reports whether the open event of process pid that found
// an exec grant can only be that exec's own open: some thread of the
// process is in execve, and every other thread is asleep in a call that
// cannot open a file.
//
// fanotify names the process (the thread group), not the thread, and with
// FAN_REPORT_PIDFD it cannot name the thread (FAN_REPORT_TID is refused
// beside it). Without this check, a sibling thread that opens the file
// while another thread executes it takes the exec's grant and reads a file
// that it may only execute. The threads' current system calls are read
// from /proc/PID/task/TID/syscall. When a sibling might be opening (or is
// running, which the kernel cannot tell apart from waiting), the grant is
// withheld: the exec's open is then decided by the open rules, which may
// deny an execute-only file to a multi-threaded program whose other
// threads are busy while it executes one (a fork+exec child has one
// thread; it is a deny, never an allow).
func (a *Agent) onlyExecOpens(pid int32) bool {
	dir := filepath.Join(a.cfg.HostRoot, "proc", strconv.Itoa(int(pid)), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	execing := false
	buf := make([]byte, 256)
	for _, t := range tasks {
		nr, ok := currentSyscall(filepath.Join(dir, t.Name(), "syscall"), buf)
		switch {
		case !ok:
			return false // unreadable: cannot tell
		case nr == unix.SYS_EXECVE || nr == unix.SYS_EXECVEAT:
			execing = true
		case nr < 0 || opensFile(nr):
			// In a call that opens; or stopped in the kernel outside any
			// call, where the kernel does not say what it waits for; or
			// "running": the kernel prints that for any thread it did not
			// catch asleep, and a thread waiting for the agent's answer
			// is woken whenever the agent answers any event (the waiters
			// share one queue; seen here: the opener read as running
			// many times in a row). Any of them may be the opener.
			return false
		}
	}
	return execing
}

// runningInUserSpace is what currentSyscall returns for a thread the
// kernel reports as "running", as opposed to -1, blocked outside a call.
const runningInUserSpace = -2

// currentSyscall reads the system call number a thread is in: -1 when it
// is blocked outside a call, runningInUserSpace when it is running.
func currentSyscall(path string, buf []byte) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	n, err := f.Read(buf)
	if err != nil || n == 0 {
		return 0, false
	}
	field, _, _ := bytes.Cut(bytes.TrimSpace(buf[:n]), []byte(" "))
	if string(field) == "running" {
		return runningInUserSpace, true
	}
	nr, err := strconv.Atoi(string(field))
	if err != nil {
		return 0, false
	}
	return nr, true
}

// opensFile reports whether system call nr can raise an open permission
// event; io_uring_enter is counted because its workers open for the caller.
func opensFile(nr int) bool {
	switch nr {
	case unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_IO_URING_ENTER:
		return true
	}
	return legacyOpen(nr)
}
