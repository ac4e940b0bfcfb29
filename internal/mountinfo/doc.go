// Package mountinfo owns reading and parsing the kernel's per-process mount
// table, /proc/PID/mountinfo, and answering "which mount holds this path".
// It is shared by internal/environ (environment detection) and the fanotify
// backend (which mounts to mark, and which mount an event's file lives on).
//
// The format is described in proc(5) ("/proc/pid/mountinfo") and in the
// kernel's Documentation/filesystems/proc.rst; the writer is show_mountinfo
// in fs/proc_namespace.c. One line per mount:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2) (3)   (4)   (5)      (6)      (7)   (8) (9)    (10)         (11)
//
// Files:
//
//   - doc.go: this overview.
//   - mountinfo.go: the Mount type, Parse (an io.Reader in, mounts and a
//     *ParseError out) and Read (the live file under a root directory).
//   - escape.go: decoding of the kernel's octal escapes (\040 and friends).
//   - table.go: Table, the lookup structure: longest mount-point prefix on
//     path-segment boundaries, with overmounted (hidden) mounts removed.
//
// Parsing is kept apart from reading: Parse takes any io.Reader, Read opens
// <root>/proc/<pid>/mountinfo, where root is "/" in production, "/host" in a
// pod that sees the node's /proc, and a fixture directory in tests.
//
// A malformed line never stops parsing and never panics: it is skipped and
// described in a *ParseError (line number and reason) returned next to the
// mounts that did parse. Callers that can live with a partial table use the
// mounts and log the error; errors.Is(err, ErrMalformed) tells the two apart
// from an I/O failure.
//
// The package logs nothing and holds no global mutable state.
package mountinfo
