package storage

import (
	"errors"
	"fmt"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// Mounts is a classified mount table: a mountinfo.Table plus the Info of
// every mount. Build one per mount-table snapshot (NewMounts, LoadMounts);
// it is read-only afterwards and safe for concurrent use.
type Mounts struct {
	table *mountinfo.Table
	infos []Info
}

// NewMounts classifies a snapshot. root is the directory the machine is
// read through ("/", "/host" in a pod, a fixture in tests); it is used for
// the removable-media check of block devices (ClassifyAt), done once per
// device.
func NewMounts(root string, ms []mountinfo.Mount) *Mounts {
	t := mountinfo.NewTable(ms)
	s := &Mounts{table: t, infos: make([]Info, t.Len())}
	cache := make(map[devKey]devResult)
	for i := range s.infos {
		s.infos[i] = classifyAt(root, t.At(i), cache)
	}
	return s
}

// LoadMounts reads <root>/proc/<pid>/mountinfo (pid 0: self) and
// classifies it. When some lines were malformed it returns the table of
// the good ones together with the error (errors.Is(err,
// mountinfo.ErrMalformed)); on any other error the table is nil.
func LoadMounts(root string, pid int) (*Mounts, error) {
	ms, err := mountinfo.Read(root, pid)
	if err != nil && (ms == nil || !errors.Is(err, mountinfo.ErrMalformed)) {
		return nil, fmt.Errorf("load mounts: %w", err)
	}
	s := NewMounts(root, ms)
	if err != nil {
		return s, fmt.Errorf("load mounts: %w", err)
	}
	return s, nil
}

// Lookup returns the mount holding path and its classification (see
// mountinfo.Table.Lookup for the matching rules). For a relative path, or
// when no mount holds it, both are zero values: Info.Class is "". It does
// not allocate for clean absolute paths.
func (s *Mounts) Lookup(path string) (mountinfo.Mount, Info) {
	i := s.table.LookupIndex(path)
	if i < 0 {
		return mountinfo.Mount{}, Info{}
	}
	return *s.table.At(i), s.infos[i]
}

// Info returns the classification of path's mount; ok is false when no
// mount holds it. Like Lookup it does not allocate.
func (s *Mounts) Info(path string) (info Info, ok bool) {
	i := s.table.LookupIndex(path)
	if i < 0 {
		return Info{}, false
	}
	return s.infos[i], true
}

// Table returns the underlying lookup table.
func (s *Mounts) Table() *mountinfo.Table { return s.table }

// At returns the classification of the i-th mount of the snapshot.
func (s *Mounts) At(i int) Info { return s.infos[i] }

// Len returns the number of mounts, hidden ones included.
func (s *Mounts) Len() int { return len(s.infos) }
