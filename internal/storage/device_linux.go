//go:build linux

package storage

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// blockDeviceOf returns the device number of source when it names a block
// device node under root ("/dev/sdb1"). btrfs reports an anonymous st_dev
// (major 0) in mountinfo, so its device is found through the source.
func blockDeviceOf(root, source string) (major, minor uint32, ok bool) {
	if !strings.HasPrefix(source, "/dev/") {
		return 0, 0, false
	}
	if root == "" {
		root = "/"
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, source), &st); err != nil {
		return 0, 0, false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, false
	}
	return unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), true //nolint:unconvert // Rdev's type differs by arch
}
