//go:build linux

package storage

import (
	"encoding/binary"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// blocksOf returns st_blocks (512-byte units) from a FileInfo made by the
// os package.
func blocksOf(fi fs.FileInfo) (int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, false
	}
	return st.Blocks, true
}

// RemoteDataStat is RemoteData for a unix.Stat_t, as the fanotify path has
// after fstat on the event's descriptor. path may be "" (no xattr check),
// or a path to the same file such as /proc/self/fd/N.
func RemoteDataStat(path string, st *unix.Stat_t, info Info) (remote bool, reason string) {
	if st == nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, ReasonNotRegular
	}
	return decideRemote(path, st.Size, st.Blocks, true, info)
}

// windowsAttributes reads the 32-bit Windows attribute word that the SMB
// client or an NTFS driver exposes as an extended attribute (see
// attributeXattr).
func windowsAttributes(path, fstype string) (uint32, bool) {
	name, bigEndian := attributeXattr(fstype)
	if name == "" {
		return 0, false
	}
	var buf [8]byte
	n, err := getxattr(path, name, buf[:])
	if err != nil || n != 4 {
		return 0, false
	}
	if bigEndian {
		return binary.BigEndian.Uint32(buf[:4]), true
	}
	return binary.NativeEndian.Uint32(buf[:4]), true
}

// getxattr retries on EINTR: getxattr on a network filesystem can sleep
// interruptibly, and a signal to the agent must not turn into "no attribute".
func getxattr(path, name string, buf []byte) (int, error) {
	for {
		n, err := unix.Getxattr(path, name, buf)
		if err != unix.EINTR {
			return n, err
		}
	}
}
