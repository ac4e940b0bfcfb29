package storage

import "fmt"

// Class is a storage class. The values are part of the policy language
// (storageClasses: [local, network, cloud, shared-folder, removable]) and
// must not be renamed.
type Class string

// The storage classes.
const (
	// ClassLocal is a disk or memory filesystem of this machine: ext4, xfs,
	// btrfs, zfs, tmpfs, vfat on a fixed disk, and FUSE filesystems that
	// are not recognised as remote.
	ClassLocal Class = "local"
	// ClassNetwork is a network filesystem not recognised as a cloud
	// service: NFS, SMB/CIFS, CephFS, GlusterFS, Lustre, sshfs, WebDAV.
	ClassNetwork Class = "network"
	// ClassCloud is a cloud provider's file or object storage: Azure Files
	// and Blob, AWS EFS, FSx and S3, Google Cloud Storage, OneDrive, and
	// rclone remotes.
	ClassCloud Class = "cloud"
	// ClassSharedFolder is a folder shared by a hypervisor host with this
	// guest: virtiofs, 9p over virtio, VirtualBox vboxsf, VMware vmhgfs,
	// Parallels prl_fs, WSL drvfs.
	ClassSharedFolder Class = "shared-folder"
	// ClassRemovable is a filesystem on a removable block device: USB mass
	// storage, SD cards, optical media.
	ClassRemovable Class = "removable"
	// ClassPseudo is a kernel pseudo filesystem with no user data: proc,
	// sysfs, cgroup, devpts, tracefs, bpf, and the like.
	ClassPseudo Class = "pseudo"
	// ClassOverlay is a union filesystem, typically a container's root:
	// overlay, fuse-overlayfs, aufs.
	ClassOverlay Class = "overlay"
)

// Classes lists every class, in the order above.
func Classes() []Class {
	return []Class{ClassLocal, ClassNetwork, ClassCloud, ClassSharedFolder, ClassRemovable, ClassPseudo, ClassOverlay}
}

// Valid reports whether c is one of the defined classes.
func (c Class) Valid() bool {
	switch c {
	case ClassLocal, ClassNetwork, ClassCloud, ClassSharedFolder, ClassRemovable, ClassPseudo, ClassOverlay:
		return true
	}
	return false
}

// ParseClass returns the class named s, or an error naming the valid ones.
func ParseClass(s string) (Class, error) {
	if c := Class(s); c.Valid() {
		return c, nil
	}
	return "", fmt.Errorf("unknown storage class %q (want one of %v)", s, Classes())
}

// Provider names the service or mechanism behind a mount, more precisely
// than its class. It is informational (audit records, drmfilter env); the
// set grows as detection improves. Empty when nothing more precise than the
// filesystem type is known.
type Provider string

// Known providers.
const (
	ProviderAzureFiles      Provider = "azure-files"
	ProviderAzureBlob       Provider = "azure-blob"
	ProviderAWSEFS          Provider = "aws-efs"
	ProviderAWSFSxLustre    Provider = "aws-fsx-lustre"
	ProviderAWSFSxONTAP     Provider = "aws-fsx-ontap"
	ProviderAWSFSxOpenZFS   Provider = "aws-fsx-openzfs"
	ProviderAWSFSxWindows   Provider = "aws-fsx-windows"
	ProviderAWSS3           Provider = "aws-s3"
	ProviderS3              Provider = "s3" // an S3-API client not tied to AWS
	ProviderGCS             Provider = "gcs"
	ProviderGoogleDrive     Provider = "google-drive"
	ProviderRclone          Provider = "rclone"
	ProviderOneDrive        Provider = "onedrive"
	ProviderJuiceFS         Provider = "juicefs"
	ProviderNFS             Provider = "nfs"
	ProviderCIFS            Provider = "cifs"
	ProviderCeph            Provider = "ceph"
	ProviderGlusterFS       Provider = "glusterfs"
	ProviderLustre          Provider = "lustre"
	ProviderSSHFS           Provider = "sshfs"
	ProviderWebDAV          Provider = "webdav"
	ProviderGVFS            Provider = "gvfs"
	ProviderVirtioFS        Provider = "virtiofs"
	Provider9P              Provider = "9p"
	ProviderVBoxSF          Provider = "vboxsf"
	ProviderVMHGFS          Provider = "vmhgfs"
	ProviderParallels       Provider = "prl_fs"
	ProviderWSLDrvFS        Provider = "wsl-drvfs"
	ProviderUSB             Provider = "usb"
	ProviderSDCard          Provider = "sd-card"
	ProviderRemovableDevice Provider = "removable-device"
	ProviderFUSE            Provider = "fuse"
)

// Info is the classification of one mount.
type Info struct {
	// Class is the storage class.
	Class Class
	// Provider is the service or mechanism, when known (see Provider).
	Provider Provider
	// FSType is the mount's filesystem type as in mountinfo ("nfs4",
	// "fuse.rclone"), kept so that RemoteData can pick filesystem-specific
	// metadata.
	FSType string
	// FUSE is true for filesystems served by a userspace process
	// (fstype "fuse", "fuse.*" or "fuseblk"): their block counts and
	// attributes are whatever the daemon reports.
	FUSE bool
	// Reason names the signal that decided the class, for audit records
	// and drmfilter env: "fstype nfs4, server fs-1.efs.us-east-1.amazonaws.com
	// is an EFS DNS name".
	Reason string
}
