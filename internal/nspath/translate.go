package nspath

import (
	"path"
	"strings"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// Translate returns the path under which a process whose mount table is
// procMounts sees the file that a viewer whose mount table is hostMounts
// sees at hostPath, on the device major:minor (st_dev of the file). ok is
// false when the process cannot see the file: no visible mount of the
// device in procMounts shows the part of the filesystem that holds it.
//
// Both tables are snapshots of /proc/PID/mountinfo (proc(5)); Translate
// builds a mountinfo.Table from each on every call. Callers that translate
// many paths against the same snapshots use TranslateTables. The roles are
// symmetric: swapping the tables translates a container path back to a
// host path.
//
// When hostMounts has no mount of the device that can hold hostPath, and
// procMounts has the device at hostPath itself, hostPath is returned as it
// is: a readlink of a file on a mount outside the reader's namespace
// prints the path from that namespace's root (see "Which view a path is
// in" in the package documentation). When hostMounts does have the device
// there, hostPath is taken as the viewer's path; the Resolver also tries
// the process's reading when no file of the device exists at hostPath in
// the viewer's view, which a pure function cannot know.
//
// Paths are handled lexically: hostPath is cleaned but no symlink is
// resolved, so it should be canonical (a readlink of an open file is). A
// device of 0:0 means "unknown": the file is taken to be on whatever mount
// holds hostPath. See the package documentation for the algorithm.
func Translate(hostMounts, procMounts []mountinfo.Mount, hostPath string, major, minor uint32) (string, bool) {
	return TranslateTables(mountinfo.NewTable(hostMounts), mountinfo.NewTable(procMounts), hostPath, major, minor)
}

// TranslateTables is Translate over tables built once (mountinfo.NewTable),
// as the Resolver caches them. It does not modify the tables and is safe
// for concurrent use.
func TranslateTables(host, proc *mountinfo.Table, hostPath string, major, minor uint32) (string, bool) {
	if hostPath == "" || hostPath[0] != '/' {
		return "", false
	}
	p := path.Clean(hostPath)
	src, ok := locate(host, p, major, minor)
	if !ok {
		return foreign(proc, p, major, minor)
	}
	m := host.At(src)
	// Match the process's mounts by the device of the source mount: with
	// an unknown or per-layer device (see locate) that is the only device
	// the tables know.
	return place(proc, fsPath(m, p), m.Major, m.Minor)
}

// foreign is the last resort for a path no viewer's table explains. A
// readlink of a file whose mount is not in the reader's namespace prints
// the path from the root of that mount's namespace (prepend_path in
// fs/d_path.c): if the process has the device at that very path, the path
// already is the process's.
func foreign(proc *mountinfo.Table, p string, major, minor uint32) (string, bool) {
	if i := proc.LookupIndex(p); i >= 0 && sameDev(proc.At(i), major, minor) {
		return p, true
	}
	return "", false
}

// locate finds the mount of host that holds p (clean, absolute) on the
// device major:minor and returns its index:
//
//  1. the visible mount that holds p (Table.LookupIndex), if it is on the
//     device, or if the device is 0:0 (unknown);
//  2. else a mount of the device at the deepest mount point on p's path,
//     hidden ones included: an open file keeps its name after its mount is
//     overmounted, and readlink reports that name;
//  3. else the visible mount that holds p when it is an overlay or btrfs:
//     an overlay whose layers span filesystems (without xino) reports for
//     non-directories the device of the layer, and btrfs reports a device
//     per subvolume; neither appears in mountinfo.
func locate(t *mountinfo.Table, p string, major, minor uint32) (int, bool) {
	vis := t.LookupIndex(p)
	if vis >= 0 && (major == 0 && minor == 0 || sameDev(t.At(vis), major, minor)) {
		return vis, true
	}
	deepest, found := -1, -1
	ms := t.Mounts()
	for i := range ms {
		m := &ms[i]
		if !hasPathPrefix(p, m.MountPoint) {
			continue
		}
		switch n := len(m.MountPoint); {
		case n > deepest:
			deepest, found = n, -1
			if sameDev(m, major, minor) {
				found = i
			}
		case n == deepest && sameDev(m, major, minor):
			found = i // the later of stacked mounts is on top
		}
	}
	if found >= 0 {
		return found, true
	}
	if vis >= 0 {
		if bt := t.At(vis).BaseType(); bt == "overlay" || bt == "btrfs" {
			return vis, true
		}
	}
	return -1, false
}

// place finds, among the visible mounts of t on the device major:minor, the
// one that shows the filesystem path rel and is not covered there by
// another mount, and returns the path through it. When several do, the one
// with the longest Root wins (the most specific bind), then the shorter
// resulting path, then the earlier mount.
func place(t *mountinfo.Table, rel string, major, minor uint32) (string, bool) {
	var (
		best     string
		bestRoot = -1
		ok       bool
	)
	ms := t.Mounts()
	for i := range ms {
		m := &ms[i]
		if t.Hidden(i) || !sameDev(m, major, minor) || !hasPathPrefix(rel, m.Root) || len(m.Root) < bestRoot {
			continue
		}
		cand := underMount(m.MountPoint, rel, m.Root)
		if t.LookupIndex(cand) != i {
			continue // a submount covers the file here
		}
		if len(m.Root) > bestRoot || len(cand) < len(best) {
			best, bestRoot, ok = cand, len(m.Root), true
		}
	}
	return best, ok
}

// fsPath returns the path of p (held by m) relative to the root of m's
// filesystem: m.Root followed by the part of p below m.MountPoint.
func fsPath(m *mountinfo.Mount, p string) string {
	return underMount(m.Root, p, m.MountPoint)
}

// underMount replaces the leading segments prefix of p (which must hold p,
// see hasPathPrefix) by base.
func underMount(base, p, prefix string) string {
	rest := p
	if prefix != "/" {
		rest = p[len(prefix):]
	}
	switch {
	case rest == "" || rest == "/":
		return base
	case base == "/":
		return rest
	default:
		return base + rest
	}
}

// hasPathPrefix reports whether prefix is p or a directory above it, on
// segment boundaries: "/data" holds "/data" and "/data/x", not "/database".
// Every absolute path has the prefix "/".
func hasPathPrefix(p, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

func sameDev(m *mountinfo.Mount, major, minor uint32) bool {
	return m.Major == major && m.Minor == minor
}
