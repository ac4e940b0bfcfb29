package environ

// Mount is one entry of the mount table with its storage class.
type Mount struct {
	// MountPoint is where the filesystem is mounted.
	MountPoint string `json:"mount_point"`
	// FSType is the filesystem type (with subtype for FUSE, "fuse.rclone").
	FSType string `json:"fstype"`
	// Source is the mount source (device, server:/export, ...).
	Source string `json:"source"`
	// Class is the storage class: local, network, cloud, shared-folder,
	// removable, pseudo, overlay.
	Class string `json:"class"`
	// Provider names the cloud or product when Class says cloud or
	// shared-folder.
	Provider string `json:"provider,omitempty"`
}

func readMounts(r *sysReader, pid int) []Mount { return nil }
