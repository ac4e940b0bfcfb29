package storage

import (
	"fmt"
	"strings"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// The lookup tables below are read-only: nothing writes to them after
// package initialisation.

// pseudoTypes are kernel filesystems that hold no user data.
var pseudoTypes = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "cpuset": true,
	"devpts": true, "devtmpfs": true, "mqueue": true, "securityfs": true,
	"debugfs": true, "tracefs": true, "bpf": true, "configfs": true,
	"fusectl": true, "pstore": true, "hugetlbfs": true, "autofs": true,
	"binfmt_misc": true, "nsfs": true, "efivarfs": true, "selinuxfs": true,
	"smackfs": true, "rpc_pipefs": true, "nfsd": true, "resctrl": true,
	"xenfs": true, "usbfs": true, "functionfs": true, "gadgetfs": true,
	"sockfs": true, "pipefs": true, "anon_inodefs": true,
}

// overlayTypes are union filesystems.
var overlayTypes = map[string]bool{
	"overlay": true, "overlayfs": true, "aufs": true, "fuse.fuse-overlayfs": true, "unionfs": true,
	"fuse.unionfs": true, "fuse.unionfs-fuse": true,
}

// localTypes are filesystems stored on this machine: on a block device
// (checked for removable media by ClassifyAt) or in memory.
var localTypes = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true,
	"bcachefs": true, "zfs": true, "f2fs": true, "jfs": true, "reiserfs": true,
	"nilfs2": true, "vfat": true, "msdos": true, "fat": true, "exfat": true,
	"ntfs": true, "ntfs3": true, "hfs": true, "hfsplus": true, "udf": true,
	"iso9660": true, "squashfs": true, "erofs": true, "cramfs": true,
	"romfs": true, "minix": true, "ufs": true, "ocfs2": true, "gfs2": true,
	"tmpfs": true, "ramfs": true, "rootfs": true, "zonefs": true, "fuseblk": true,
}

// networkTypes are network filesystems without a cloud-specific rule.
var networkTypes = map[string]Provider{
	"ceph": ProviderCeph, "fuse.ceph": ProviderCeph, "fuse.ceph-fuse": ProviderCeph,
	"glusterfs": ProviderGlusterFS, "fuse.glusterfs": ProviderGlusterFS,
	"fuse.sshfs": ProviderSSHFS, "sshfs": ProviderSSHFS,
	"davfs": ProviderWebDAV, "fuse.davfs": ProviderWebDAV, "fuse.davfs2": ProviderWebDAV,
	"fuse.smbnetfs": ProviderCIFS, "fuse.gvfsd-fuse": ProviderGVFS,
	"afs": "afs", "coda": "coda", "ncpfs": "ncpfs", "gpfs": "gpfs",
	"beegfs": "beegfs", "orangefs": "orangefs", "pvfs2": "orangefs",
	"fuse.mfs": "moosefs", "fuse.moosefs": "moosefs", "fuse.lizardfs": "lizardfs",
	"fuse.curlftpfs": "ftp", "fuse.s3ql": ProviderAWSS3,
}

// fuseCloud maps a FUSE subtype, or the source of a plain "fuse" mount
// (daemons that set fsname but no subtype), to a cloud provider.
var fuseCloud = map[string]Provider{
	"blobfuse":           ProviderAzureBlob, // blobfuse v1: "blobfuse on /mnt type fuse"
	"blobfuse2":          ProviderAzureBlob, // blobfuse2: "blobfuse2 on /mnt type fuse"
	"azure-storage-fuse": ProviderAzureBlob,
	"mountpoint-s3":      ProviderAWSS3, // Mountpoint for S3: fstype fuse, source mountpoint-s3
	"s3fs":               ProviderAWSS3, // s3fs-fuse: fuse.s3fs, source s3fs
	// goofys is absent on purpose: it sets only fsname (the bucket name),
	// no subtype, so its mounts look like any other "fuse" mount.
	"geesefs":                ProviderS3,  // geesefs: fuse.geesefs, any S3-API endpoint
	"gcsfuse":                ProviderGCS, // Cloud Storage FUSE: fuse.gcsfuse, source bucket
	"rclone":                 ProviderRclone,
	"onedriver":              ProviderOneDrive,
	"juicefs":                ProviderJuiceFS,
	"google-drive-ocamlfuse": ProviderGoogleDrive,
}

// fusePseudo are FUSE daemons that serve kernel-like views, not user data.
var fusePseudo = map[string]bool{"lxcfs": true}

// Classify classifies a mount from its mountinfo line alone: filesystem
// type, source and super options. It never touches the machine, so a
// filesystem on a removable disk comes out as local; use ClassifyAt (or
// NewMounts) to have the block device checked.
//
// Rules, first match wins: pseudo filesystems; union filesystems; shared
// folders (virtiofs; 9p with trans=virtio; vboxsf; vmhgfs; prl_fs; WSL
// drvfs); NFS and SMB by server name (Azure, EFS, FSx), EFS TLS tunnels
// (NFSv4 to 127.0.0.1 with port=); Lustre (FSx by name); other network
// filesystems; FUSE daemons by subtype or source; local filesystems; and
// for an unknown type, a source that looks like host:/path or //host/share
// means network, anything else local.
func Classify(m mountinfo.Mount) Info {
	info := classify(&m)
	info.FSType = m.FSType
	switch m.BaseType() {
	case "fuse", "fuseblk":
		info.FUSE = true
	}
	return info
}

func classify(m *mountinfo.Mount) Info {
	fstype := m.FSType
	base, sub := m.BaseType(), m.Subtype()
	switch {
	case pseudoTypes[fstype]:
		return Info{Class: ClassPseudo, Reason: "fstype " + fstype + " is a kernel pseudo filesystem"}
	case base == "fuse" && fusePseudo[sub]:
		return Info{Class: ClassPseudo, Provider: ProviderFUSE, Reason: "fstype " + fstype + " serves kernel-like views (lxcfs)"}
	case overlayTypes[fstype]:
		return Info{Class: ClassOverlay, Reason: "fstype " + fstype + " is a union filesystem (container root)"}
	}

	if info, ok := sharedFolder(m); ok {
		return info
	}

	switch base {
	case "nfs", "nfs4":
		return classifyNFS(m)
	case "cifs", "smb3", "smb2", "smbfs":
		return classifySMB(m)
	case "lustre":
		return classifyLustre(m)
	}
	if p, ok := networkTypes[fstype]; ok {
		return Info{Class: ClassNetwork, Provider: p, Reason: "fstype " + fstype + " is a network filesystem"}
	}
	if base == "fuse" {
		return classifyFUSE(m, sub)
	}
	if localTypes[fstype] {
		return Info{Class: ClassLocal, Reason: "fstype " + fstype + " is a local filesystem"}
	}
	if remoteLookingSource(m.Source) {
		return Info{Class: ClassNetwork, Reason: fmt.Sprintf("unknown fstype %s with a network-style source %q", fstype, m.Source)}
	}
	return Info{Class: ClassLocal, Reason: "unknown fstype " + fstype + " without a network-style source; assumed local"}
}

// sharedFolder recognises hypervisor shared folders.
func sharedFolder(m *mountinfo.Mount) (Info, bool) {
	fstype := m.FSType
	switch fstype {
	case "virtiofs":
		return Info{Class: ClassSharedFolder, Provider: ProviderVirtioFS, Reason: "fstype virtiofs (host directory shared over virtio)"}, true
	case "9p":
		// WSL2 mounts Windows drives as 9p with aname=drvfs;path=C:\;...
		if aname, _ := m.SuperOption("aname"); strings.HasPrefix(aname, "drvfs") || m.Source == "drvfs" {
			return Info{Class: ClassSharedFolder, Provider: ProviderWSLDrvFS, Reason: "fstype 9p with aname=drvfs (WSL2 Windows drive)"}, true
		}
		trans, _ := m.SuperOption("trans")
		if trans == "virtio" {
			return Info{Class: ClassSharedFolder, Provider: Provider9P, Reason: "fstype 9p with trans=virtio (host directory shared over virtio)"}, true
		}
		// trans=tcp, unix, fd, rdma, xen: a 9p server reached otherwise.
		return Info{Class: ClassNetwork, Provider: Provider9P, Reason: "fstype 9p with trans=" + trans + " (not virtio)"}, true
	case "drvfs":
		return Info{Class: ClassSharedFolder, Provider: ProviderWSLDrvFS, Reason: "fstype drvfs (WSL1 Windows drive)"}, true
	case "vboxsf":
		return Info{Class: ClassSharedFolder, Provider: ProviderVBoxSF, Reason: "fstype vboxsf (VirtualBox shared folder)"}, true
	case "vmhgfs", "fuse.vmhgfs-fuse":
		return Info{Class: ClassSharedFolder, Provider: ProviderVMHGFS, Reason: "fstype " + fstype + " (VMware shared folder)"}, true
	case "prl_fs":
		return Info{Class: ClassSharedFolder, Provider: ProviderParallels, Reason: "fstype prl_fs (Parallels shared folder)"}, true
	}
	return Info{}, false
}

// classifyNFS classifies NFS mounts by server name.
func classifyNFS(m *mountinfo.Mount) Info {
	server, export := splitHostPath(m.Source)
	host := strings.ToLower(server)
	fstype := m.FSType
	switch {
	case isAzureHost(host, "file"):
		return Info{Class: ClassCloud, Provider: ProviderAzureFiles, Reason: "fstype " + fstype + ", server " + host + " is an Azure Files endpoint (*.file.core.windows.net)"}
	case isAzureHost(host, "blob"):
		return Info{Class: ClassCloud, Provider: ProviderAzureBlob, Reason: "fstype " + fstype + ", server " + host + " is an Azure Blob NFS endpoint (*.blob.core.windows.net)"}
	case isEFSHost(host):
		return Info{Class: ClassCloud, Provider: ProviderAWSEFS, Reason: "fstype " + fstype + ", server " + host + " is an EFS DNS name (fs-*.efs.REGION.amazonaws.com)"}
	case isFSxHost(host) && hasLabelPrefix(host, "svm-"):
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxONTAP, Reason: "fstype " + fstype + ", server " + host + " is an FSx for ONTAP SVM endpoint (svm-*.fs-*.fsx.REGION.amazonaws.com)"}
	case isFSxHost(host):
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxOpenZFS, Reason: "fstype " + fstype + ", server " + host + " is an FSx file system DNS name (fs-*.fsx.REGION.amazonaws.com) serving NFS: FSx for OpenZFS"}
	}
	if isLoopback(host) {
		if port, ok := m.SuperOption("port"); ok && isNFSv4(m) {
			// amazon-efs-utils mounts through a TLS tunnel (stunnel, or
			// efs-proxy since 2.0) listening on a loopback port; the
			// kernel shows port= only when it is not 2049. Its own
			// watchdog recognises its mounts the same way. Another
			// loopback NFSv4 tunnel would look identical; efs-utils is
			// the only documented producer, so the reason names it.
			return Info{Class: ClassCloud, Provider: ProviderAWSEFS, Reason: "fstype " + fstype + " to " + host + ":" + export + " with port=" + port + ": an amazon-efs-utils TLS tunnel (stunnel/efs-proxy)"}
		}
	}
	return Info{Class: ClassNetwork, Provider: ProviderNFS, Reason: "fstype " + fstype + ", server " + server}
}

// isNFSv4 reports whether an NFS mount speaks version 4.
func isNFSv4(m *mountinfo.Mount) bool {
	if m.FSType == "nfs4" {
		return true
	}
	v, _ := m.SuperOption("vers")
	return strings.HasPrefix(v, "4")
}

// classifySMB classifies SMB/CIFS mounts by server name.
func classifySMB(m *mountinfo.Mount) Info {
	host := strings.ToLower(smbServer(m.Source))
	fstype := m.FSType
	switch {
	case isAzureHost(host, "file"):
		return Info{Class: ClassCloud, Provider: ProviderAzureFiles, Reason: "fstype " + fstype + ", server " + host + " is an Azure Files endpoint (*.file.core.windows.net)"}
	case isFSxHost(host) && hasLabelPrefix(host, "svm-"):
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxONTAP, Reason: "fstype " + fstype + ", server " + host + " is an FSx for ONTAP SVM endpoint"}
	case isFSxHost(host):
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxWindows, Reason: "fstype " + fstype + ", server " + host + " is an FSx DNS name serving SMB: FSx for Windows File Server"}
	case strings.HasPrefix(host, "amznfsx"):
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxWindows, Reason: "fstype " + fstype + ", server " + host + " has the amznfsx prefix of FSx for Windows File Server DNS names"}
	}
	return Info{Class: ClassNetwork, Provider: ProviderCIFS, Reason: "fstype " + fstype + ", server " + host}
}

// classifyLustre recognises FSx for Lustre: "fs-ID.fsx.REGION.amazonaws.com@tcp:/MOUNTNAME",
// or an address with the mount name "fsx" (SCRATCH_1 file systems).
func classifyLustre(m *mountinfo.Mount) Info {
	src := strings.ToLower(m.Source)
	nids, fsname, _ := strings.Cut(src, ":/")
	switch {
	case strings.Contains(nids, ".fsx.") && strings.Contains(nids, ".amazonaws.com"):
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxLustre, Reason: "fstype lustre, server " + nids + " is an FSx for Lustre DNS name"}
	case fsname == "fsx":
		return Info{Class: ClassCloud, Provider: ProviderAWSFSxLustre, Reason: "fstype lustre with file system name fsx (the FSx for Lustre SCRATCH_1 mount name)"}
	}
	return Info{Class: ClassNetwork, Provider: ProviderLustre, Reason: "fstype lustre, servers " + nids}
}

// classifyFUSE classifies FUSE mounts by subtype, or by source when the
// daemon sets no subtype.
func classifyFUSE(m *mountinfo.Mount, sub string) Info {
	key, by := sub, "subtype"
	if key == "" {
		key, by = m.Source, "source"
	}
	p, ok := fuseCloud[strings.ToLower(key)]
	if !ok {
		if strings.HasPrefix(m.Source, "http://") || strings.HasPrefix(m.Source, "https://") {
			return Info{Class: ClassNetwork, Provider: ProviderWebDAV, Reason: "FUSE mount of URL source " + m.Source + " (davfs2)"}
		}
		if remoteLookingSource(m.Source) {
			return Info{Class: ClassNetwork, Provider: ProviderFUSE, Reason: "FUSE " + by + " " + strconvQuote(key) + " with a network-style source " + strconvQuote(m.Source)}
		}
		return Info{Class: ClassLocal, Provider: ProviderFUSE, Reason: "FUSE " + by + " " + strconvQuote(key) + " is not a recognised remote filesystem; assumed local"}
	}
	if p == ProviderRclone {
		// rclone does not expose the backend type; the remote name
		// ("onedrive:" in "onedrive:Documents") is chosen by the user, so
		// this is a naming heuristic.
		remote, _, _ := strings.Cut(m.Source, ":")
		if strings.Contains(strings.ToLower(remote), "onedrive") {
			return Info{Class: ClassCloud, Provider: ProviderOneDrive, Reason: "FUSE subtype rclone with remote " + strconvQuote(remote) + " named like OneDrive (name heuristic)"}
		}
		return Info{Class: ClassCloud, Provider: ProviderRclone, Reason: "FUSE subtype rclone, remote " + strconvQuote(remote)}
	}
	return Info{Class: ClassCloud, Provider: p, Reason: "FUSE " + by + " " + key + " identifies a " + string(p) + " client"}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// splitHostPath splits an NFS source "server:/export" ("[v6addr]:/export"
// for IPv6) into server and export.
func splitHostPath(src string) (host, path string) {
	if strings.HasPrefix(src, "[") {
		if i := strings.Index(src, "]:"); i > 0 {
			return src[1:i], src[i+2:]
		}
	}
	if i := strings.Index(src, ":/"); i >= 0 {
		return src[:i], src[i+1:]
	}
	if i := strings.LastIndexByte(src, ':'); i >= 0 {
		return src[:i], src[i+1:]
	}
	return src, ""
}

// smbServer returns the server of "//server/share" (or "\\server\share").
func smbServer(src string) string {
	s := strings.TrimLeft(src, `/\`)
	if i := strings.IndexAny(s, `/\`); i >= 0 {
		s = s[:i]
	}
	return s
}

// remoteLookingSource reports whether a source names a remote server:
// "host:/path" or "//host/share".
func remoteLookingSource(src string) bool {
	if strings.HasPrefix(src, "//") {
		return true
	}
	i := strings.Index(src, ":/")
	return i > 0 && !strings.HasPrefix(src, "/")
}

// azureSuffixes are the storage DNS suffixes of the public and sovereign
// Azure clouds.
var azureSuffixes = []string{".core.windows.net", ".core.chinacloudapi.cn", ".core.usgovcloudapi.net", ".core.cloudapi.de"}

// isAzureHost reports whether host is an Azure storage endpoint of the
// given service: ACCOUNT.SERVICE.core.windows.net (and privatelink forms,
// ACCOUNT.privatelink.SERVICE.core.windows.net).
func isAzureHost(host, service string) bool {
	for _, suf := range azureSuffixes {
		if strings.HasSuffix(host, "."+service+suf) {
			return true
		}
	}
	return false
}

// isAWSHost reports whether host is under amazonaws.com (or .com.cn).
func isAWSHost(host string) bool {
	return strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")
}

// isEFSHost matches fs-ID.efs.REGION.amazonaws.com and the mount-target
// form AZ.fs-ID.efs.REGION.amazonaws.com.
func isEFSHost(host string) bool {
	return isAWSHost(host) && strings.Contains(host, ".efs.") && hasLabelPrefix(host, "fs-")
}

// isFSxHost matches FSx DNS names: fs-ID.fsx.REGION.amazonaws.com and the
// ONTAP SVM form svm-ID.fs-ID.fsx.REGION.amazonaws.com.
func isFSxHost(host string) bool {
	return isAWSHost(host) && strings.Contains(host, ".fsx.")
}

// hasLabelPrefix reports whether a DNS label of host starts with prefix.
func hasLabelPrefix(host, prefix string) bool {
	return strings.HasPrefix(host, prefix) || strings.Contains(host, "."+prefix)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// ClassifyAt is Classify plus a check of the block device under root
// (see Removable): a local filesystem on a removable or USB device becomes
// ClassRemovable. A failed check (no sysfs under root, a fixture without
// the device) leaves the class local and says so in Reason.
func ClassifyAt(root string, m mountinfo.Mount) Info {
	return classifyAt(root, &m, nil)
}

// devKey identifies a block device in the per-snapshot cache of NewMounts.
type devKey struct{ major, minor uint32 }

// devResult is the cached answer of Removable for one device.
type devResult struct {
	removable bool
	provider  Provider
	reason    string
	err       error
}

// classifyAt classifies m, consulting and filling cache (may be nil) for
// the block-device check.
func classifyAt(root string, m *mountinfo.Mount, cache map[devKey]devResult) Info {
	info := Classify(*m)
	if info.Class != ClassLocal || !localTypes[m.FSType] {
		return info
	}
	major, minor := m.Major, m.Minor
	if major == 0 {
		// btrfs and some others report an anonymous st_dev: fall back to
		// the device node named as the source.
		var ok bool
		if major, minor, ok = blockDeviceOf(root, m.Source); !ok {
			return info
		}
	}
	key := devKey{major, minor}
	res, ok := cache[key]
	if !ok {
		res.removable, res.provider, res.reason, res.err = Removable(root, major, minor)
		if cache != nil {
			cache[key] = res
		}
	}
	switch {
	case res.err != nil:
		info.Reason += "; removable media not checked: " + res.err.Error()
	case res.removable:
		info.Class = ClassRemovable
		info.Provider = res.provider
		info.Reason = "fstype " + m.FSType + " on " + res.reason
	default:
		info.Reason += fmt.Sprintf("; block device %d:%d is not removable", major, minor)
	}
	return info
}
