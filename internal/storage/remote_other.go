//go:build !linux

package storage

import "io/fs"

// blocksOf is Linux-only here; elsewhere the block count is unknown and
// RemoteData answers ReasonNoBlockCount.
func blocksOf(fi fs.FileInfo) (int64, bool) { return 0, false }

// windowsAttributes is Linux-only (user.cifs.dosattrib, system.ntfs_attrib).
func windowsAttributes(path, fstype string) (uint32, bool) { return 0, false }
