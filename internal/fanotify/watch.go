package fanotify

import (
	"errors"
	"path/filepath"
)

// ErrUnreachable is set in NameEvent.Err when the directory of an event
// exists but has no path through the mount its filesystem is watched by
// (a bind mount of a subdirectory shows only part of the filesystem), or
// moved while it was being resolved.
var ErrUnreachable = errors.New("fanotify: directory not reachable through the watched mount")

// WatchOptions select fanotify_init(2) flags of a Watcher beyond the fixed
// ones. The zero value is a sensible default.
type WatchOptions struct {
	// UnlimitedQueue lifts the queue limit of
	// /proc/sys/fs/fanotify/max_queued_events (FAN_UNLIMITED_QUEUE).
	// Without it, events that do not fit are dropped and one
	// QueueOverflow event is queued.
	UnlimitedQueue bool
	// BufferSize is the read(2) buffer in bytes; zero means 64 KiB. It
	// must be at least 4 KiB (one event with two handles and a name is
	// under 700 bytes; read(2) fails when the next event does not fit).
	BufferSize int

	// noTargetFID makes OpenWatcher behave as on a kernel before 5.17,
	// without FAN_REPORT_TARGET_FID. For tests of the fallback.
	noTargetFID bool
}

// WatchFeatures reports what OpenWatcher and the kernel settled on.
type WatchFeatures struct {
	// InitFlags are the fanotify_init(2) flags of the group.
	InitFlags uint
	// ChildFID is true when directory-entry events identify the child
	// itself (FAN_REPORT_TARGET_FID, Linux 5.17). Without it, the child
	// of Create and MovedTo events is found by name (fstatat), which
	// can be a later occupant of the name, and the child of Delete and
	// MovedFrom events is unknown.
	ChildFID bool
}

// NameEvent is a change to a directory entry, read by Watcher.Read.
//
// The kernel merges a queued event with a later one about the same
// directory, name and child caused by the same process, or-ing the masks:
// Create|MovedFrom for "a" means a was created and then renamed away, in
// that order or not. Treat a NameEvent as "this name changed" and look at
// the name's state now, rather than replaying masks as a history. Events
// for different names arrive in the order they happened.
type NameEvent struct {
	// Mask is Create, Delete, MovedFrom, MovedTo or several of them, with
	// OnDir when the child is a directory; or QueueOverflow, when events
	// were lost and the caller must rescan what it watches.
	Mask uint64
	// Pid is the process that changed the name (its thread-group id).
	Pid int32
	// Dir is the path of the directory holding Name, resolved when the
	// event is read, through the mount the filesystem was watched by;
	// empty when it cannot be resolved (then Err says why).
	Dir string
	// Name is the directory entry (no slash).
	Name string
	// Dev and Ino identify the child (st_dev, st_ino), zero when unknown:
	// from the child's file handle when the kernel reports it
	// (WatchFeatures.ChildFID), which fails once the child's last link
	// is gone; else, for Create and MovedTo, from fstatat(2) of Name in
	// Dir at read time.
	Dev, Ino uint64
	// Nlink is the child's link count at read time, when Ino is known.
	Nlink uint64
	// Child is the child's file handle when the kernel reports it
	// (WatchFeatures.ChildFID) and it could be resolved (Ino is known),
	// else the zero Handle. It stays valid for as long as the inode
	// lives, whatever it is renamed to: Watcher.StatHandle finds the file
	// by it later.
	Child Handle
	// Err is non-nil when the event could not be fully resolved: a
	// malformed record (matching ErrMalformedEvent), a directory removed
	// before the event was read (matching unix.ESTALE), a filesystem no
	// longer watched, a directory outside the watched mount
	// (ErrUnreachable). Mask and Name are still set; a careful caller
	// rescans as after QueueOverflow.
	Err error
}

// Handle is a file handle as fanotify reports it: the filesystem's id and
// struct file_handle's type and bytes (a copy, comparable with ==). On
// tmpfs, ext4, xfs and btrfs a handle carries the inode's generation, so a
// later file that reuses the inode number has a different handle.
type Handle struct {
	Fsid  [2]int32
	Type  int32
	Bytes string
}

// Valid reports whether h is a handle (not the zero Handle).
func (h Handle) Valid() bool { return h.Bytes != "" }

// IsOverflow reports whether the event says events were lost.
func (e *NameEvent) IsOverflow() bool { return e.Mask&QueueOverflow != 0 }

// Path is Dir joined with Name, or "" when Dir is unknown.
func (e *NameEvent) Path() string {
	if e.Dir == "" {
		return ""
	}
	return filepath.Join(e.Dir, e.Name)
}
