package storage

import "io/fs"

// Windows file attribute bits (MS-FSCC section 2.6, File Attributes), as
// exposed by the Linux SMB client and NTFS drivers.
const (
	// FILE_ATTRIBUTE_OFFLINE: "the data of a file is not available
	// immediately"; set by HSM systems and cloud tiering.
	fileAttributeOffline = 0x00001000
	// FILE_ATTRIBUTE_RECALL_ON_OPEN: the file has no local representation;
	// opening it fetches it (cloud placeholders).
	fileAttributeRecallOnOpen = 0x00040000
	// FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS: the file's data is not fully
	// present locally; reading it fetches it (OneDrive and other cloud-files
	// placeholders).
	fileAttributeRecallOnDataAccess = 0x00400000
)

// Reasons RemoteData returns. They are constants so that the per-event
// path does not allocate.
const (
	ReasonNotRegular    = "not a regular file"
	ReasonOffline       = "the filesystem marks the file offline (FILE_ATTRIBUTE_OFFLINE)"
	ReasonRecall        = "the filesystem marks the file as a placeholder recalled on access (FILE_ATTRIBUTE_RECALL_ON_OPEN or _ON_DATA_ACCESS)"
	ReasonEmpty         = "empty file"
	ReasonNoBlockCount  = "no block count available"
	ReasonAllocated     = "the file has blocks allocated"
	ReasonNoBlocksCloud = "size > 0 with no blocks allocated on a cloud mount"
	ReasonNoBlocksNet   = "size > 0 with no blocks allocated on a network mount"
	ReasonNoBlocksFUSE  = "size > 0 with no blocks allocated on a FUSE mount"
	ReasonSparseLocal   = "no blocks allocated, but the mount is not remote or FUSE: a sparse or inline file"
)

// RemoteData reports whether the data of a regular file is not held locally
// — a placeholder, an object not yet downloaded, an offline HSM file —
// deciding from metadata only: it never opens or reads the file. It is not
// the question "is the mount remote" (Info.Class answers that): a fully
// cached file on a FUSE mount has local blocks and is not remote data.
//
// fi is the file's fs.FileInfo (from os.Stat or os.Lstat), info the
// classification of the mount holding it (Mounts.Lookup). path, when not
// empty, lets RemoteData read the Windows attribute pseudo extended
// attribute that some filesystems expose; pass "" to skip that.
//
// Signals, in order:
//
//  1. On SMB mounts (cifs, smb3) the user.cifs.dosattrib pseudo xattr
//     (fs/smb/client/xattr.c), and on NTFS (ntfs3, ntfs-3g via fuseblk) the
//     system.ntfs_attrib_be xattr, carry the Windows attributes: OFFLINE or
//     RECALL_ON_OPEN / RECALL_ON_DATA_ACCESS set means remote. Reading them
//     may make the SMB client revalidate the inode's attributes with the
//     server; it never reads file data.
//  2. A size > 0 with st_blocks == 0 on a cloud-class, network-class or
//     FUSE mount: nothing is stored behind the file here (rclone, blobfuse
//     and s3fs report 0 blocks for objects not in their cache).
//
// Linux has no generic offline flag: FS_IOC_GETFLAGS (ioctl_iflags(2)) and
// statx's stx_attributes (statx(2)) define none, and FUSE passes no such
// attribute, so these are the only documented markers.
func RemoteData(path string, fi fs.FileInfo, info Info) (remote bool, reason string) {
	if fi == nil || !fi.Mode().IsRegular() {
		return false, ReasonNotRegular
	}
	blocks, ok := blocksOf(fi)
	return decideRemote(path, fi.Size(), blocks, ok, info)
}

// decideRemote is RemoteData once the metadata has been extracted.
func decideRemote(path string, size, blocks int64, haveBlocks bool, info Info) (bool, string) {
	if path != "" {
		if attrs, ok := windowsAttributes(path, info.FSType); ok {
			if attrs&fileAttributeOffline != 0 {
				return true, ReasonOffline
			}
			if attrs&(fileAttributeRecallOnOpen|fileAttributeRecallOnDataAccess) != 0 {
				return true, ReasonRecall
			}
		}
	}
	switch {
	case size <= 0:
		return false, ReasonEmpty
	case !haveBlocks:
		return false, ReasonNoBlockCount
	case blocks > 0:
		return false, ReasonAllocated
	case info.Class == ClassCloud:
		return true, ReasonNoBlocksCloud
	case info.Class == ClassNetwork:
		return true, ReasonNoBlocksNet
	case info.FUSE:
		return true, ReasonNoBlocksFUSE
	}
	return false, ReasonSparseLocal
}

// attributeXattr names the extended attribute holding a file's Windows
// attributes on fstype, or "" when the filesystem has none, and whether its
// value is big-endian (otherwise host order).
//
//   - SMB client (cifs, smb3): user.cifs.dosattrib, the inode's cifsAttrs
//     as a host-order __u32 after revalidating the inode's attributes
//     (cifs_attrib_get in fs/smb/client/xattr.c).
//   - ntfs3 and ntfs-3g (which shows as fuseblk): system.ntfs_attrib_be,
//     which both define as the attributes in big-endian order.
func attributeXattr(fstype string) (name string, bigEndian bool) {
	switch fstype {
	case "cifs", "smb3", "smb2":
		return "user.cifs.dosattrib", false
	case "ntfs3", "ntfs", "fuseblk":
		return "system.ntfs_attrib_be", true
	}
	return "", false
}
