// Package nspath owns the translation of file paths between mount
// namespaces: from the path under which the agent sees a file (the readlink
// of an event descriptor, in the agent's own mount namespace) to the path
// under which a process in a container sees the same file, and back. It is
// what lets a policy name "/etc/app/secret.yaml" as a pod sees it while the
// agent enforces on the file itself.
//
// Sources: proc(5) for /proc/PID/mountinfo (fields, "mount point relative
// to the process's root"), /proc/PID/root and /proc/PID/ns/mnt;
// mount_namespaces(7) for namespaces, propagation and why one filesystem
// shows up under different paths in different namespaces; openat2(2)
// RESOLVE_IN_ROOT for the symlink semantics HostPath follows; the kernel's
// Documentation/filesystems/overlayfs.rst ("Inode properties") for the
// devices overlayfs reports. Mount tables are parsed by internal/mountinfo
// and looked up through its Table (longest mount point, overmounts hidden).
//
// # The algorithm (Translate)
//
// A file is named by its device (st_dev, the major:minor of field 3 of
// mountinfo) and its path relative to the root of its filesystem. A mount
// shows the subtree of its filesystem at Root (field 4) under MountPoint
// (field 5). So, given the viewer's table, the process's table, a path in
// the viewer's view and the file's device:
//
//  1. Find the viewer's mount of the device that holds the path: the
//     visible mount there if it is on the device (or if the device is 0:0,
//     unknown); else a mount of the device at the deepest mount point on
//     the path even if overmounted (an open file keeps the name it had);
//     else the visible mount if it is an overlay or btrfs, which report
//     per-layer or per-subvolume devices that mountinfo does not list.
//  2. The path in the filesystem is that mount's Root followed by the rest
//     of the path below its MountPoint.
//  3. Among the process's visible (not overmounted) mounts of the same
//     device whose Root is that path or a directory above it, take the one
//     with the longest Root, provided no other mount covers the resulting
//     path; the answer is its MountPoint followed by the rest.
//
// Bind mounts of files and directories (Docker volumes, Kubernetes secrets,
// configmaps, projected tokens, /etc/hosts) are mounts whose Root is the
// bound path; an overlay root is a mount of the overlay's own anonymous
// device, which the host namespace also shows where the runtime mounted it
// (/var/lib/docker/overlay2/ID/merged, containerd's .../rootfs). When the
// agent names the file as /proc/N/root/rest, the viewer's table is
// process N's and the path is /rest. When step 1 finds nothing and the
// process's visible mount at the very path is on the device, the path is
// returned as it is: a readlink of a file on a mount that exists only in
// another namespace prints the path from that namespace's root (d_path).
//
// Paths are compared as strings, segment by segment; nothing is resolved.
// A configmap file is reached through "..data" symlinks, so the canonical
// path the agent reads (".../..2026_11_26_21_04_33.1823456789/app.yaml")
// translates to the canonical container path under the same versioned
// directory; HostPath resolves a policy's "/etc/config/app.yaml" to that
// same canonical name.
//
// What is not handled: a process whose root is not under any mount of its
// table (a chroot into a subdirectory of a mount, without pivot_root, shows
// no mount at "/"), and a readlink from a third namespace that happens to
// look like a path of the device on the host.
//
// # The cache
//
// A Resolver keeps one parsed table per view, keyed by the inode of
// /proc/PID/ns/mnt and, because mountinfo paths are relative to the
// process's root, by the device and inode of /proc/PID/root (two processes
// of one namespace, one chrooted, see different tables). Each call costs
// two stat(2)s of /proc/PID for the key. A table is reused for Options.TTL
// (1 s by default); a lookup that finds nothing in tables older than
// Options.RetryAfter (100 ms) reads them again once, so a volume mounted a
// moment ago is found; Invalidate(nsIno) and Flush drop tables at once.
// Namespace inode numbers are reused after a namespace dies, which the TTL
// bounds. The agent's own table is read from /proc/self/mountinfo under
// Options.SelfRoot ("/"), and processes in the agent's view share it.
//
// # Files
//
//	doc.go              this overview
//	translate.go        Translate and TranslateTables: the pure algorithm over mountinfo tables
//	resolver.go         Resolver, Options, File, Error, the per-view cache, ContainerPath
//	resolver_linux.go   keys (stat of /proc/PID/ns/mnt and root), HostPath and the in-root symlink walk
//	resolver_other.go   stubs returning ErrNotSupported off Linux
//
// The package logs nothing and holds no global mutable state.
package nspath
