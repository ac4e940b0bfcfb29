//go:build !linux

package environ

import (
	"fmt"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// NewCgroupOwners returns nil off Linux: there are no cgroups to examine,
// and no /proc/PID/cgroup naming one.
func NewCgroupOwners(root string) *CgroupOwners { return nil }

func checkMount(m *mountinfo.Mount) error {
	return fmt.Errorf("cgroups: %w: %w", ErrCgroupUnverified, ErrNotSupported)
}

func checkDirs(mp string, rest []string, idDepth int, all bool) error {
	return fmt.Errorf("cgroups: %w: %w", ErrCgroupUnverified, ErrNotSupported)
}
