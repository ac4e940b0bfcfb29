//go:build linux && !(amd64 || arm64 || riscv64)

package proc

import "golang.org/x/sys/unix"

// statPath is stat(2) of a NUL-terminated path, following symlinks (and
// the /proc/PID/exe magic link). Architectures without newfstatat(2) in
// x/sys/unix go through unix.Stat, which allocates the path.
func statPath(path []byte, st *unix.Stat_t) error {
	for {
		err := unix.Stat(string(path[:len(path)-1]), st)
		if err != unix.EINTR {
			return err
		}
	}
}
