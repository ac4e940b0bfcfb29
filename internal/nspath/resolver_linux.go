package nspath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxLinks is the kernel's limit on symbolic links followed in one path
// resolution (MAXSYMLINKS, include/linux/namei.h).
const maxLinks = 40

// statRetry is stat(2) retried on EINTR: Go's runtime installs its signal
// handlers with SA_RESTART, but a stat on a FUSE or network filesystem
// behind a /proc/PID/root can still return EINTR when a signal arrives.
// The error is the bare errno; callers add the step and the path.
func statRetry(name string, st *unix.Stat_t) error {
	for {
		err := unix.Stat(name, st)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// splitDev splits st_dev into major and minor as the kernel's
// new_encode_dev does (unix.Major, unix.Minor).
func splitDev(dev uint64) (uint32, uint32, error) {
	return unix.Major(dev), unix.Minor(dev), nil
}

// HostPath resolves containerPath in the view of process pid and returns
// where the agent can open the same file, with its canonical container
// path, device and inode. Symbolic links are resolved inside the
// process's root (<root>/proc/PID/root): an absolute link or a ".." at the
// top stays in that root, as for the process itself, and never reaches
// the agent's files. The file must exist. The file itself is only
// lstat'ed, never opened, so no fanotify open event is raised for it (the
// directories on the way are opened by os.Root). Meant for tools and
// policy explain, not for the per-event path: it walks the path one
// component at a time.
func (r *Resolver) HostPath(pid int, containerPath string) (File, error) {
	fail := func(err error) (File, error) {
		return File{}, &Error{Op: "host path", PID: pid, Path: containerPath, Err: err}
	}
	if pid <= 0 {
		return fail(fmt.Errorf("pid %d: %w", pid, ErrInvalid))
	}
	if !path.IsAbs(containerPath) {
		return fail(fmt.Errorf("path not absolute: %w", ErrInvalid))
	}
	rootDir := r.procPath(pid, "root")
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return fail(fmt.Errorf("open process root: %w", err))
	}
	defer root.Close()
	canon, fi, err := resolveIn(root, containerPath)
	if err != nil {
		return fail(fmt.Errorf("resolve in process root: %w", err))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fail(fmt.Errorf("stat %s: no stat_t", canon))
	}
	f := File{ContainerPath: canon, Dev: st.Dev, Ino: st.Ino, Mode: fi.Mode()}
	if p, ok := r.agentPath(pid, canon, st.Dev, st.Ino); ok {
		f.Path = p
		return f, nil
	}
	f.Path = filepath.Join(rootDir, canon)
	f.ViaProcRoot = true
	return f, nil
}

// agentPath translates canon from pid's view into the agent's and checks
// that the path found there is the same file. Failure to read a table is
// not an error here: the /proc/PID/root path is still right.
func (r *Resolver) agentPath(pid int, canon string, dev, ino uint64) (string, bool) {
	self, err := r.selfView(0)
	if err != nil {
		return "", false
	}
	v, err := r.procView(pid, 0)
	if err != nil {
		return "", false
	}
	p, ok := TranslateTables(v.tab, self.tab, canon, unix.Major(dev), unix.Minor(dev))
	if !ok {
		return "", false
	}
	var st unix.Stat_t
	if err := statRetry(p, &st); err != nil || st.Dev != dev || st.Ino != ino {
		return "", false
	}
	return p, true
}

// resolveIn walks name one component at a time under root, resolving
// symbolic links itself so that it knows the canonical path: an absolute
// link restarts at root, ".." is taken lexically on the already resolved
// (symlink-free) prefix and stops at root, as RESOLVE_IN_ROOT does
// (openat2(2)). Every lookup goes through root (os.Root), which refuses
// to leave it even if the tree changes during the walk. It returns the
// canonical absolute path and the file's stat (following nothing: the
// last component is not a link).
func resolveIn(root *os.Root, name string) (string, fs.FileInfo, error) {
	pending := splitPath(name, nil)
	resolved := make([]string, 0, len(pending))
	links := 0
	var fi fs.FileInfo
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			fi = nil
			continue
		}
		rel := strings.Join(append(resolved, c), "/")
		st, err := root.Lstat(rel)
		if err != nil {
			return "", nil, err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", nil, fmt.Errorf("/%s: %w", rel, ErrTooManyLinks)
			}
			target, err := root.Readlink(rel)
			if err != nil {
				return "", nil, err
			}
			if strings.HasPrefix(target, "/") {
				resolved = resolved[:0]
			}
			pending = splitPath(target, pending)
			fi = nil
			continue
		}
		if !st.IsDir() && hasComponents(pending) {
			return "", nil, &fs.PathError{Op: "lstat", Path: "/" + rel, Err: syscall.ENOTDIR}
		}
		resolved = append(resolved, c)
		fi = st
	}
	canon := "/" + strings.Join(resolved, "/")
	if fi == nil { // the root, or a path ending in ".." or a link to a directory above
		rel := "."
		if len(resolved) > 0 {
			rel = canon[1:]
		}
		st, err := root.Lstat(rel)
		if err != nil {
			return "", nil, err
		}
		fi = st
	}
	return canon, fi, nil
}

// splitPath returns the components of p followed by rest.
func splitPath(p string, rest []string) []string {
	parts := strings.Split(p, "/")
	out := make([]string, 0, len(parts)+len(rest))
	out = append(out, parts...)
	return append(out, rest...)
}

// hasComponents reports whether pending names anything but "" and ".".
func hasComponents(pending []string) bool {
	for _, c := range pending {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

// sameFile reports whether containerPath, looked up in the view of pid
// without following any symlink (openat2(2) RESOLVE_IN_ROOT |
// RESOLVE_NO_SYMLINKS, O_PATH: no fanotify open event), is the file dev,
// ino. Kernels before 5.6 lack openat2; there the last component alone is
// not followed (fstatat AT_SYMLINK_NOFOLLOW).
func (r *Resolver) sameFile(pid int, containerPath string, dev, ino uint64) bool {
	rootfd, err := openRetry(r.procPath(pid, "root"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(rootfd)
	rel := strings.TrimLeft(containerPath, "/")
	if rel == "" {
		rel = "."
	}
	var st unix.Stat_t
	fd, err := openat2Retry(rootfd, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case err == nil:
		defer unix.Close(fd)
		err = unix.Fstat(fd, &st)
	case errors.Is(err, unix.ENOSYS):
		err = unix.Fstatat(rootfd, rel, &st, unix.AT_SYMLINK_NOFOLLOW)
	}
	return err == nil && st.Dev == dev && st.Ino == ino
}

// openRetry is open(2) retried on EINTR.
func openRetry(name string, flags int) (int, error) {
	for {
		fd, err := unix.Open(name, flags, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// openat2Retry is openat2(2) retried on EINTR (and on EAGAIN, which
// RESOLVE_IN_ROOT returns when a rename raced with the lookup).
func openat2Retry(dirfd int, name string, how *unix.OpenHow) (int, error) {
	for range 16 {
		fd, err := unix.Openat2(dirfd, name, how)
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// existsIn reports whether p, as a path in the view of process viewPID (0:
// the agent's own, where p is used as it is), names a file on device dev.
// It follows symlinks as the view's owner would; it is a plausibility
// check for ContainerPath, not a proof.
func (r *Resolver) existsIn(viewPID int, p string, dev uint64) bool {
	if viewPID != 0 {
		p = r.procPath(viewPID, "root") + p
	}
	var st unix.Stat_t
	return statRetry(p, &st) == nil && st.Dev == dev
}
