// Package nspath owns the translation of file paths between mount
// namespaces: from the path under which the agent sees a file (the readlink
// of an event descriptor) to the path under which a process in a container
// sees the same file (ContainerPath, ContainerPathOf), and from a path as a
// container process names it to a path the agent can open (HostPath). It is
// what lets a policy name "/etc/app/secret.yaml" as a pod sees it while the
// agent enforces on the file itself. It holds no policy.
//
// Sources: proc(5) for /proc/PID/mountinfo (fields; "mount point relative
// to the process's root"), /proc/PID/root and /proc/PID/ns/mnt;
// mount_namespaces(7) for namespaces, propagation, and why one filesystem
// shows up under different paths in different namespaces; openat2(2) for
// RESOLVE_IN_ROOT, whose symlink rules HostPath follows; the kernel's
// Documentation/filesystems/overlayfs.rst ("Inode properties") for the
// devices overlayfs reports; prepend_path in fs/d_path.c for what readlink
// prints for a file on a mount outside the reader's namespace. Mount
// tables are parsed by internal/mountinfo and looked up through its Table
// (longest mount point, overmounts hidden).
//
// # The algorithm (Translate)
//
// A file is named by its device (st_dev, the major:minor of mountinfo
// field 3) and its path relative to the root of its filesystem. A mount
// shows the subtree of its filesystem at Root (field 4) under MountPoint
// (field 5). So, given a viewer's table, the process's table, a path in
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
//     path there; the answer is its MountPoint followed by the rest.
//
// Bind mounts of files and directories (Docker volumes, Kubernetes secrets,
// configmaps, projected tokens, subPath mounts, /etc/hosts) are mounts
// whose Root is the bound path. An overlay root is a mount of the
// overlay's own anonymous device, which the node's namespace also shows
// where the runtime mounted it (/var/lib/docker/overlay2/ID/merged,
// containerd's .../k8s.io/ID/rootfs).
//
// # Which view a path is in
//
// readlink(2) of a descriptor prints the path relative to the reader's
// root only if the descriptor's mount is reachable from it. For a mount
// that exists only in another namespace (a container's bind of a volume,
// its overlay root) it prints the path from the root of that namespace,
// with no mark: the agent reads the container's open /etc/app/secret.yaml
// as "/etc/app/secret.yaml" (TestLiveContainer shows it). An agent in a pod
// also reads node paths ("/var/lib/kubelet/...") for node mounts made after
// it started that did not propagate into its namespace. So ContainerPath
// reads hostPath in turn as a path in the agent's own view, in the node's
// view (PID 1 under the Resolver's root; skipped when it is the agent's),
// and in the process's own view (the answer is then hostPath itself), and
// takes the first reading the tables can place. The process's reading is
// tried only when no earlier view explains the path: when none has the
// device mounted there, or no file of the device exists at that path in
// it (one stat(2)). A path of the form /proc/N/root/rest or
// <root>/proc/N/root/rest is read in N's view only.
//
// A reading that places is not always the right one: when the agent's
// view has the device at a path that, read as the agent's, leads to
// another file the process can also see, ContainerPath names that other
// file. ContainerPathOf takes the file's inode as well and checks every
// reading's answer inside the process's root (openat2(2) with
// RESOLVE_IN_ROOT and RESOLVE_NO_SYMLINKS, then fstat): the agent, which
// has the event descriptor, should call it. It costs an open, an openat2,
// an fstat and two closes per reading tried. TestLiveContainer builds that
// trap and shows both answers.
//
// Paths are compared as strings, segment by segment; nothing is resolved.
// A configmap file is reached through "..data" symlinks, so the canonical
// path the agent reads (".../..2026_11_26_21_04_33.1823456789/app.yaml")
// translates to the canonical container path under the same versioned
// directory; HostPath resolves a policy's "/etc/config/app.yaml" to that
// same canonical name, which is how a policy written with the short name
// is matched against events. A readlink of a deleted file ends in
// " (deleted)": callers strip it first.
//
// A process chrooted into a plain directory (no pivot_root) has no mount
// at "/" in its mountinfo, which lists only mounts at or below its root:
// the Resolver finds its root directory in the agent's view (readlink of
// /proc/PID/root, on the device of the root) and adds it to the table as a
// mount of that subtree at "/" (TestLiveChroot).
//
// # The cache
//
// A Resolver keeps one parsed table per view, keyed by the inode of the
// process's mount namespace (readlink of /proc/PID/ns/mnt, "mnt:[N]") and,
// because mountinfo paths are relative to the process's root, by the
// device and inode of /proc/PID/root: two processes of one namespace, one
// chrooted, see different tables. The key costs a readlink(2) and a
// statx(2) per call, made through stack buffers, so a call on a cached
// view allocates nothing but its answer (BenchmarkContainerPath): about
// 10 µs on the 2-vCPU development VM, nearly all of it those two /proc
// system calls, against under 1 µs for the translation itself
// (BenchmarkTranslateTables); ContainerPathOf about 23 µs. The
// agent's own table comes from /proc/self/mountinfo under Options.SelfRoot
// and is shared by every process in the agent's view.
//
// Mount tables change (containers start, volumes are mounted); the choice
// here is a short TTL rather than watching every namespace. A table is
// reused for Options.TTL (1 s by default). A lookup that places nothing in
// tables older than Options.RetryAfter (100 ms) reads them again once and
// retries, so a volume mounted a moment ago is found at once, while a
// steady stream of files a process cannot see costs at most one re-read
// per RetryAfter. Invalidate(nsIno) and Flush drop tables at once, for
// callers that know of a change (a runtime event). Namespace inode numbers
// are reused after a namespace dies, which the TTL bounds. Two callers
// missing at once both read the table; the later store wins.
//
// # Files
//
//	doc.go              this overview
//	translate.go        Translate, TranslateTables: the pure algorithm over mountinfo tables
//	resolver.go         Resolver, Options, File, Error, the per-view cache, ContainerPath(Of)
//	resolver_linux.go   HostPath and its in-root symlink walk, the inode check of ContainerPathOf
//	sys_linux.go        the cache key: readlink and statx through stack buffers
//	resolver_other.go   stubs returning ErrNotSupported off Linux
//	testdata/           mountinfo pairs (Docker, Kubernetes node, pod agent, one shape per line); see its README
//
// The package logs nothing and holds no global mutable state.
package nspath
