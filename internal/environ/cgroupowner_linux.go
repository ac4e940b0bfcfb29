package environ

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// File system magic numbers (statfs(2), include/uapi/linux/magic.h).
const (
	procSuperMagic    = 0x9fa0
	cgroupSuperMagic  = 0x27e0eb
	cgroup2SuperMagic = 0x63677270
)

// NewCgroupOwners makes a CgroupOwners for the machine whose /proc is
// root/proc. It returns nil, which believes every name, when root/proc is
// not a proc file system: a fixture tree in tests describes no machine
// whose cgroups could be examined.
func NewCgroupOwners(root string) *CgroupOwners {
	if root == "" {
		root = "/"
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(root, "proc"), &st); err != nil || st.Type != procSuperMagic {
		return nil
	}
	return &CgroupOwners{root: root}
}

// checkMount sees that m is still what its mount point shows: a cgroup
// file system of m's device.
func checkMount(m *mountinfo.Mount) error {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(m.MountPoint, &sfs); err != nil {
		return fmt.Errorf("statfs %s: %w: %w", m.MountPoint, ErrCgroupUnverified, err)
	}
	if sfs.Type != cgroupSuperMagic && sfs.Type != cgroup2SuperMagic {
		return fmt.Errorf("%s is not a cgroup file system: %w", m.MountPoint, ErrCgroupUnverified)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(m.MountPoint, &st); err != nil {
		return fmt.Errorf("stat %s: %w: %w", m.MountPoint, ErrCgroupUnverified, err)
	}
	if dev := uint64(st.Dev); major(dev) != m.Major || minor(dev) != m.Minor {
		return fmt.Errorf("%s is device %d:%d, mountinfo says %d:%d: %w", m.MountPoint, major(dev), minor(dev), m.Major, m.Minor, ErrCgroupUnverified)
	}
	return nil
}

func major(dev uint64) uint32 { return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff) }
func minor(dev uint64) uint32 { return uint32(dev&0xff | (dev>>12)&^0xff) }

// checkDirs examines the directories of a cgroup path below the mount
// point mp: rest are the path's segments below the mount's root, and the
// name carrying the container is rest[idDepth-1]. Every directory from mp
// down to its parent must be root's and writable by root alone, and the
// directory itself must exist. With all set (a v1 hierarchy) the rule
// extends to every directory of the path.
func checkDirs(mp string, rest []string, idDepth int, all bool) error {
	if idDepth <= 0 || idDepth > len(rest) {
		return fmt.Errorf("the named cgroup is not below the mount at %s: %w", mp, ErrCgroupUnverified)
	}
	last := idDepth - 1 // the deepest directory that must be root's
	if all {
		last = len(rest)
	}
	var dev uint64
	dir := mp
	for k := 0; k <= len(rest) && k <= max(last, idDepth); k++ {
		if k > 0 {
			dir = dir + "/" + rest[k-1]
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(dir, &st); err != nil {
			return fmt.Errorf("stat %s: %w: %w", dir, ErrCgroupUnverified, err)
		}
		if k == 0 {
			dev = uint64(st.Dev)
		}
		mode := os.FileMode(st.Mode & 0o7777)
		switch {
		case st.Mode&syscall.S_IFMT != syscall.S_IFDIR || uint64(st.Dev) != dev:
			return fmt.Errorf("%s is not a directory of the cgroup file system: %w", dir, ErrCgroupUnverified)
		case k > last:
			// The directory carrying the name: it exists; its owner is
			// the container's.
		case st.Uid != 0:
			return fmt.Errorf("%s is owned by uid %d, not root: %w", dir, st.Uid, ErrCgroupNotRoot)
		case mode&0o022 != 0:
			return fmt.Errorf("%s is writable by %s (mode %v): %w", dir, writers(mode), mode, ErrCgroupNotRoot)
		}
	}
	return nil
}

func writers(mode os.FileMode) string {
	var w []string
	if mode&0o020 != 0 {
		w = append(w, "its group")
	}
	if mode&0o002 != 0 {
		w = append(w, "others")
	}
	return strings.Join(w, " and ")
}
