package mountinfo

import (
	"path"
	"strings"
)

// Table answers which mount holds a path. It is built once per mountinfo
// snapshot (NewTable) and is read-only afterwards, so it is safe for
// concurrent use. Re-read and rebuild it when mounts change: FUSE and
// autofs mounts come and go.
type Table struct {
	// mounts is a private copy of the snapshot, in input order.
	mounts []Mount
	// top maps a mount point to the index of the visible mount there: the
	// last one in input order that is not hidden by a later overmount.
	top map[string]int
	// hidden[i] is true when mounts[i] is covered by a later mount on the
	// same mount point or on a directory above it.
	hidden []bool
}

// NewTable builds a lookup table from a mountinfo snapshot. The slice is
// copied; the caller may reuse it.
//
// Where several mounts share a mount point (overmounting), the last one in
// the list is on top, as the kernel lists a namespace's mounts in the order
// they were attached. A mount is also hidden when a mount later in the list
// covers a directory above its mount point and is not one of its ancestors
// (by ParentID): mounting over /a hides an earlier /a/b whose parent is the
// old /a. A mount whose ancestor appears later in the list (the root is not
// always listed first) stays visible.
func NewTable(mounts []Mount) *Table {
	t := &Table{
		mounts: append([]Mount(nil), mounts...),
		top:    make(map[string]int, len(mounts)),
		hidden: make([]bool, len(mounts)),
	}
	last := make(map[string]int, len(mounts))
	byID := make(map[int]int, len(mounts))
	// Mount points are cleaned for the maps: the kernel writes them clean,
	// but a fixture or a fuzzer may not.
	points := make([]string, len(t.mounts))
	for i := range t.mounts {
		points[i] = path.Clean(t.mounts[i].MountPoint)
		last[points[i]] = i
		byID[t.mounts[i].ID] = i
	}
	for i := range t.mounts {
		p := points[i]
		for {
			if j, ok := last[p]; ok && j > i && !t.isAncestor(j, i, byID) {
				t.hidden[i] = true
				break
			}
			if p == "/" {
				break
			}
			p = parentDir(p)
		}
	}
	for i := range t.mounts {
		if !t.hidden[i] {
			t.top[points[i]] = i
		}
	}
	return t
}

// isAncestor reports whether mounts[a] is on the ParentID chain of
// mounts[d]. The walk is bounded, as a garbage table can hold cycles.
func (t *Table) isAncestor(a, d int, byID map[int]int) bool {
	id := t.mounts[d].ParentID
	for range len(t.mounts) {
		j, ok := byID[id]
		if !ok {
			return false
		}
		if j == a {
			return true
		}
		if t.mounts[j].ParentID == id { // the root lists itself as parent
			return false
		}
		id = t.mounts[j].ParentID
	}
	return false
}

// parentDir returns the directory above an absolute, clean path; "/" for a
// top-level name.
func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Len returns the number of mounts in the table, hidden ones included.
func (t *Table) Len() int { return len(t.mounts) }

// At returns the i-th mount of the snapshot (input order). The pointer is
// into the table: do not modify the mount.
func (t *Table) At(i int) *Mount { return &t.mounts[i] }

// Hidden reports whether the i-th mount is covered by an overmount and so
// never answers a lookup.
func (t *Table) Hidden(i int) bool { return t.hidden[i] }

// Mounts returns the snapshot in input order. The slice is the table's own:
// do not modify it.
func (t *Table) Mounts() []Mount { return t.mounts }

// Lookup returns the mount that holds path: the visible mount whose mount
// point is the longest prefix of path on a segment boundary ("/data" holds
// "/data/x" but not "/database"). path must be absolute; it is cleaned
// first (path.Clean, which allocates only when the path is not already
// clean). It returns nil for a relative path or when no mount matches.
// The result points into the table: do not modify it. Lookup does not
// allocate for clean paths.
func (t *Table) Lookup(name string) *Mount {
	if i := t.LookupIndex(name); i >= 0 {
		return &t.mounts[i]
	}
	return nil
}

// LookupIndex is Lookup returning the mount's index in the snapshot, or -1.
func (t *Table) LookupIndex(name string) int {
	if name == "" || name[0] != '/' {
		return -1
	}
	p := path.Clean(name)
	for {
		if i, ok := t.top[p]; ok {
			return i
		}
		if p == "/" {
			return -1
		}
		p = parentDir(p)
	}
}
