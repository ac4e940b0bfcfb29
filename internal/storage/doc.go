// Package storage owns the storage classification of mounts: for every
// mount of a mountinfo snapshot, which class of storage holds its files
// (local disk, network share, cloud storage, hypervisor shared folder,
// removable medium, pseudo filesystem, container overlay) and, where it can
// be told, which provider (Azure Files, AWS EFS, S3, GCS, ...). The class
// strings are the ones the policy language uses in storageClasses.
//
// It also answers, from metadata only, whether a file's data is absent from
// the machine (a cloud placeholder, an unhydrated object), see RemoteData.
//
// Files:
//
//   - doc.go: this overview.
//   - class.go: Class, Provider and Info.
//   - classify.go: Classify, the rules from a mountinfo line alone (fstype,
//     source, super options), and ClassifyAt, which adds the block-device
//     check for removable media.
//   - removable.go: Removable, reading /sys/dev/block/MAJ:MIN under a root
//     (the removable flag, a USB bus in the device path, SD cards, and the
//     slaves of device-mapper and md devices).
//   - mounts.go: Mounts, a classified mount table built once per snapshot,
//     with an allocation-free Lookup.
//   - remote.go, remote_linux.go, remote_other.go: RemoteData.
//   - device_linux.go, device_other.go: the device number of a /dev node,
//     for filesystems (btrfs) that report an anonymous st_dev.
//
// Signals used, and where they are documented: proc(5) for mountinfo; the
// kernel's Documentation/ABI/stable/sysfs-block for /sys/dev/block and the
// removable attribute; fs/smb/client/xattr.c for the user.cifs.dosattrib
// pseudo extended attribute; MS-FSCC 2.6 for the FILE_ATTRIBUTE_OFFLINE and
// RECALL_ON_* bits; amazon-efs-utils' watchdog for what its TLS mounts look
// like (NFSv4 to 127.0.0.1 with a port= option). fanotify(7) explains why
// the agent needs this per mount: marks are placed per mount or filesystem.
//
// Everything is read through a root directory ("/" in production, "/host"
// in a pod, a fixture tree in tests). The package logs nothing and keeps no
// global mutable state.
package storage
