package fanotify

// Kernel ABI values from include/uapi/linux/fanotify.h. They are repeated
// here, rather than taken from golang.org/x/sys/unix, so that the decoder
// and its fuzz test build on every platform. The values are part of the
// stable Linux user-space ABI and never change.

// Event mask bits (fanotify_mark(2) "mask", fanotify(7) "mask" field).
const (
	// OpenPerm asks permission to open a file (FAN_OPEN_PERM).
	OpenPerm uint64 = 0x0001_0000
	// AccessPerm asks permission to read a file (FAN_ACCESS_PERM).
	AccessPerm uint64 = 0x0002_0000
	// OpenExecPerm asks permission to open a file for execution
	// (FAN_OPEN_EXEC_PERM, Linux 5.0).
	OpenExecPerm uint64 = 0x0004_0000
	// QueueOverflow reports that the event queue overflowed
	// (FAN_Q_OVERFLOW); such an event has no file descriptor.
	QueueOverflow uint64 = 0x0000_4000
	// OnDir also reports events on directories (FAN_ONDIR).
	OnDir uint64 = 0x4000_0000

	// PermEvents is every permission event this package answers.
	PermEvents = OpenPerm | AccessPerm | OpenExecPerm

	// MovedFrom reports that a name was moved out of a directory
	// (FAN_MOVED_FROM, Linux 5.1 with FID reporting).
	MovedFrom uint64 = 0x0000_0040
	// MovedTo reports that a name was moved into a directory
	// (FAN_MOVED_TO).
	MovedTo uint64 = 0x0000_0080
	// Create reports that a name was created in a directory: a new file,
	// directory, symlink, device node, or a hard link (FAN_CREATE).
	Create uint64 = 0x0000_0100
	// Delete reports that a name was removed from a directory
	// (FAN_DELETE).
	Delete uint64 = 0x0000_0200

	// NameChanges is every directory-entry event a Watcher asks for.
	NameChanges = Create | Delete | MovedFrom | MovedTo
)

// Values of Event.Fd and Event.PidFd that are not descriptors.
const (
	// NoFd is FAN_NOFD: the event carries no file descriptor
	// (queue overflow).
	NoFd int32 = -1
	// NoPidFd is FAN_NOPIDFD: no pidfd was requested, or the process
	// had already exited when the event was read.
	NoPidFd int32 = -1
	// PidFdError is FAN_EPIDFD: the kernel failed to create a pidfd.
	PidFdError int32 = -2
)

// Layout of the records read from the fanotify descriptor (fanotify(7)).
const (
	metadataVersion = 3  // FANOTIFY_METADATA_VERSION
	metadataLen     = 24 // FAN_EVENT_METADATA_LEN: sizeof(struct fanotify_event_metadata)
	infoHeaderLen   = 4  // sizeof(struct fanotify_event_info_header)
	infoTypePidFd   = 4  // FAN_EVENT_INFO_TYPE_PIDFD
	infoPidFdLen    = 8  // sizeof(struct fanotify_event_info_pidfd)
	responseLen     = 8  // sizeof(struct fanotify_response)

	// Offsets inside struct fanotify_event_metadata.
	offEventLen    = 0  // __u32 event_len
	offVers        = 4  // __u8 vers
	offMetadataLen = 6  // __u16 metadata_len
	offMask        = 8  // __aligned_u64 mask
	offFd          = 16 // __s32 fd
	offPid         = 20 // __s32 pid

	// Info record types (struct fanotify_event_info_header.info_type)
	// that carry a file identifier, struct fanotify_event_info_fid.
	infoTypeFid         = 1  // FAN_EVENT_INFO_TYPE_FID: the object (child)
	infoTypeDfidName    = 2  // FAN_EVENT_INFO_TYPE_DFID_NAME: directory and name
	infoTypeDfid        = 3  // FAN_EVENT_INFO_TYPE_DFID: directory only
	infoTypeOldDfidName = 10 // FAN_EVENT_INFO_TYPE_OLD_DFID_NAME (FAN_RENAME)
	infoTypeNewDfidName = 12 // FAN_EVENT_INFO_TYPE_NEW_DFID_NAME (FAN_RENAME)

	// Layout of struct fanotify_event_info_fid: the info header, a
	// __kernel_fsid_t (two s32), then a struct file_handle (u32
	// handle_bytes, s32 handle_type, handle_bytes of f_handle), then, for
	// the *DFID_NAME types, a NUL-terminated name and padding.
	offFidFsid        = 4  // __kernel_fsid_t fsid
	offFidHandleBytes = 12 // __u32 handle_bytes
	offFidHandleType  = 16 // int handle_type
	fidHeaderLen      = 20 // bytes before f_handle
	fileHandleLen     = 8  // sizeof(struct file_handle) without f_handle

	// Response bits of struct fanotify_response.
	respAllow = 0x01 // FAN_ALLOW
	respDeny  = 0x02 // FAN_DENY
	respAudit = 0x10 // FAN_AUDIT
)
