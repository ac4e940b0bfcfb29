package environ

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// Why a container ID read from a cgroup path is not believed.
var (
	// ErrCgroupNotRoot says that a directory above the one whose name
	// carries the container ID is owned by, or writable by, someone other
	// than root: a cgroup subtree delegated to a user (systemd's
	// Delegate=, user@UID.service), in which that user may create a
	// cgroup of any name (docker-<64 hex>.scope) and move its own
	// processes into it.
	ErrCgroupNotRoot = errors.New("cgroup may have been named by a user other than root")
	// ErrCgroupUnverified says that who could have named the cgroup could
	// not be told: no cgroup file system of that hierarchy is mounted where
	// the agent can see it, the path leads out of it, or a directory could
	// not be examined.
	ErrCgroupUnverified = errors.New("cgroup ownership not verified")
)

// CgroupOwners tells whether the container a cgroup path names was named
// by root. A container ID in a cgroup path is only a directory name, and
// the kernel lets anyone who may write a cgroup directory create
// subdirectories of any name in it and, within a subtree delegated to
// them, move their processes there (Documentation/admin-guide/cgroup-v2.rst,
// "Delegation"). So a name is believed only when every directory above the
// one carrying it, from the root of the hierarchy (as the agent's cgroup
// namespace shows it) down to its parent, is owned by uid 0 and writable
// by nobody else (no group or other write bit): then only root (or a
// process with CAP_DAC_OVERRIDE) could have created or renamed it.
//
// The directory carrying the ID may itself belong to another user: runc
// and systemd-nspawn hand a container in a user namespace its own cgroup
// by chowning it to the container's root, which lets that user create
// cgroups below it, never beside it. On a v1 hierarchy, where a process
// may be moved into any cgroup whose tasks file its mover may write (no
// common-ancestor rule), the directories below it, down to the process's
// own cgroup, must be root's too.
//
// The mounts are read from the agent's own mountinfo (root/proc/self) once
// and read again when the mount found no longer is a cgroup file system.
// It is safe for concurrent use.
type CgroupOwners struct {
	root string

	mu     sync.Mutex
	mounts []mountinfo.Mount // cgroup and cgroup2 mounts, nil until read
}

// Check returns nil when the container line names (ContainerFromCgroupPath
// of line.Path) was named by root, or when it names none; otherwise an
// error wrapping ErrCgroupNotRoot or ErrCgroupUnverified, which says which
// directory and why. A nil *CgroupOwners (a fixture tree, see
// NewCgroupOwners) believes every name.
func (o *CgroupOwners) Check(line CgroupLine) error {
	if o == nil {
		return nil
	}
	c, depth := containerFromCgroupPath(line.Path)
	if depth == 0 {
		return nil
	}
	what := "a Kubernetes pod"
	if c.ID != "" {
		id := c.ID
		if len(id) > 12 {
			id = id[:12]
		}
		what = "container " + id
		if c.Runtime != "" {
			what = c.Runtime + " " + what
		}
	}
	err := o.check(line, depth)
	if err != nil {
		return fmt.Errorf("cgroup %s names %s: %w", line.Path, what, err)
	}
	return nil
}

func (o *CgroupOwners) check(line CgroupLine, depth int) error {
	for attempt := 0; ; attempt++ {
		mounts, err := o.cgroupMounts(attempt > 0)
		if err != nil {
			return fmt.Errorf("read mounts: %w: %w", ErrCgroupUnverified, err)
		}
		m, rest, err := mountFor(mounts, line)
		if err == nil {
			err = checkMount(m)
		}
		if err != nil {
			if attempt == 0 {
				continue // the mounts may have changed: read them again
			}
			return err
		}
		return checkDirs(m.MountPoint, rest, depth-(segments(line.Path)-len(rest)), line.Hierarchy != 0 || line.Controllers != "")
	}
}

// cgroupMounts returns the cgroup file systems of the agent's mount
// namespace, read afresh when reload is set.
func (o *CgroupOwners) cgroupMounts(reload bool) ([]mountinfo.Mount, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mounts != nil && !reload {
		return o.mounts, nil
	}
	all, err := mountinfo.Read(o.root, 0)
	if err != nil && len(all) == 0 {
		return nil, err
	}
	t := mountinfo.NewTable(all)
	ms := []mountinfo.Mount{}
	for i := range t.Len() {
		if m := t.At(i); !t.Hidden(i) && (m.FSType == "cgroup" || m.FSType == "cgroup2") {
			ms = append(ms, *m)
		}
	}
	o.mounts = ms
	return ms, nil
}

// segments is the number of path segments of p ("/" has none).
func segments(p string) int {
	p = strings.Trim(p, "/")
	if p == "" {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// mountFor finds the mount of line's hierarchy that shows line.Path, and
// returns the path's segments below the mount's root. A path leading out
// of every mount (through "..": a cgroup outside the agent's cgroup
// namespace, with no mount of the hierarchy's root) has none.
func mountFor(mounts []mountinfo.Mount, line CgroupLine) (*mountinfo.Mount, []string, error) {
	v2 := line.Hierarchy == 0 && line.Controllers == ""
	var want []string
	if !v2 {
		want = strings.Split(line.Controllers, ",")
	}
	path := splitPath(line.Path)
	found := false
	for i := range mounts {
		m := &mounts[i]
		if v2 != (m.FSType == "cgroup2") || !hasControllers(m, want) {
			continue
		}
		found = true
		root := splitPath(m.Root)
		if len(root) > len(path) {
			continue
		}
		ok := true
		for j := range root {
			ok = ok && root[j] == path[j]
		}
		rest := path[len(root):]
		for _, s := range rest {
			ok = ok && s != ".." && s != "." && s != ""
		}
		if ok {
			return m, rest, nil
		}
	}
	h := "cgroup2"
	if !v2 {
		h = "cgroup v1 " + line.Controllers
	}
	if !found {
		return nil, nil, fmt.Errorf("no %s mount: %w", h, ErrCgroupUnverified)
	}
	return nil, nil, fmt.Errorf("no %s mount shows it: %w", h, ErrCgroupUnverified)
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// hasControllers reports whether the v1 mount m is the hierarchy of the
// controllers (or "name=" of a named hierarchy) listed in want.
func hasControllers(m *mountinfo.Mount, want []string) bool {
	for _, c := range want {
		if c == "" {
			continue
		}
		k, v, named := strings.Cut(c, "=")
		got, ok := m.SuperOption(k)
		if !ok || (named && got != v) {
			return false
		}
	}
	return true
}
