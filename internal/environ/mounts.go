package environ

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
	"github.com/drmfilter/drmfilter/internal/storage"
)

// Mount is one entry of the mount table with its storage class, as
// internal/storage classifies it.
type Mount struct {
	// MountPoint is where the filesystem is mounted.
	MountPoint string `json:"mount_point"`
	// FSType is the filesystem type ("ext4", "nfs4", "fuse.rclone").
	FSType string `json:"fstype"`
	// Source is the mount source (device, server:/export, ...).
	Source string `json:"source"`
	// Class is the storage class: local, network, cloud, shared-folder,
	// removable, pseudo, overlay.
	Class string `json:"class"`
	// Provider names the service or mechanism when known (azure-files,
	// aws-efs, virtiofs, usb...).
	Provider string `json:"provider,omitempty"`
	// Reason names the signal that decided the class.
	Reason string `json:"reason,omitempty"`
	// Hidden is true when a later mount on the same point covers this
	// one.
	Hidden bool `json:"hidden,omitempty"`
}

// readMounts reads /proc/<pid>/mountinfo (pid 0: self) below the root and
// classifies every mount. root is handed to internal/storage for its
// removable-media check; with Options.FS that check may find nothing and
// says so in Reason.
func readMounts(r *sysReader, root string, pid int) []Mount {
	p := "/proc/self/mountinfo"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/mountinfo"
	}
	b, err := r.read(p, largeFile)
	if err != nil {
		return []Mount{}
	}
	ms, err := mountinfo.Parse(bytes.NewReader(b))
	if err != nil {
		if !errors.Is(err, mountinfo.ErrMalformed) {
			r.note(p, fmt.Errorf("parse: %w", err))
			return []Mount{}
		}
		r.note(p, err) // some lines skipped; the rest is classified
	}
	classified := storage.NewMounts(root, ms)
	t := classified.Table()
	out := make([]Mount, 0, t.Len())
	for i := 0; i < t.Len(); i++ {
		m := t.At(i)
		info := classified.At(i)
		out = append(out, Mount{
			MountPoint: m.MountPoint,
			FSType:     m.FSType,
			Source:     m.Source,
			Class:      string(info.Class),
			Provider:   string(info.Provider),
			Reason:     info.Reason,
			Hidden:     t.Hidden(i),
		})
	}
	return out
}
