package fanotify

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// FID identifies a file the way fanotify groups with FID reporting do
// (struct fanotify_event_info_fid): the filesystem's id, as statfs(2)
// reports it in f_fsid, and an opaque file handle that open_by_handle_at(2)
// turns back into a descriptor on that filesystem.
type FID struct {
	// Fsid is the filesystem id (__kernel_fsid_t val[0], val[1]).
	Fsid [2]int32
	// HandleType is struct file_handle's handle_type.
	HandleType int32
	// Handle is f_handle. It aliases the buffer DecodeFID was given;
	// copy it to keep it past the next read. nil when the record was
	// absent.
	Handle []byte
}

// Valid reports whether the FID was present in the event.
func (f *FID) Valid() bool { return f.Handle != nil }

// FIDEvent is one record read from a fanotify group with FID reporting
// (FAN_REPORT_FID, FAN_REPORT_DIR_FID, FAN_REPORT_NAME), as DecodeFID
// returns it: byte slices alias the decoded buffer.
type FIDEvent struct {
	// Mask is the set of event bits (Create, Delete, MovedFrom, MovedTo,
	// OnDir, QueueOverflow, ...). The kernel merges a queued event with a
	// later equal one (same directory, name, child and process) by or-ing
	// their masks, so several bits may be set and their order is lost.
	Mask uint64
	// Pid is the process that caused the event.
	Pid int32
	// Fd is FAN_NOFD (NoFd) for FID groups. Should a kernel ever put a
	// descriptor here, the caller owns it and must close it.
	Fd int32
	// PidFd is a pidfd when the group asked for FAN_REPORT_PIDFD, else
	// NoPidFd. The caller owns a PidFd >= 0 and must close it.
	PidFd int32
	// Dir is the directory the name lives in
	// (FAN_EVENT_INFO_TYPE_DFID_NAME or FAN_EVENT_INFO_TYPE_DFID).
	Dir FID
	// Name is the directory entry, without its NUL; nil when the event
	// carried no name. It aliases the decoded buffer.
	Name []byte
	// Child is the object itself (FAN_EVENT_INFO_TYPE_FID): for
	// directory-entry events, the file that was created, moved or deleted,
	// reported when the group has FAN_REPORT_TARGET_FID (Linux 5.17).
	Child FID
	// Err is non-nil when the record was malformed; the fields decoded
	// before the fault are kept, and Fd and PidFd are still owned.
	Err error
}

// Pre-built decode errors: DecodeFID must not allocate.
var (
	errFIDRecord    = fmt.Errorf("%w: fid info record shorter than its file handle", ErrMalformedEvent)
	errFIDName      = fmt.Errorf("%w: name in fid info record is not NUL-terminated", ErrMalformedEvent)
	errFIDDuplicate = fmt.Errorf("%w: repeated fid info record", ErrMalformedEvent)
)

// DecodeFID parses the records of one read(2) from a fanotify group with FID
// reporting and appends them to dst[:0]. Like Decode it is a pure function
// over bytes: no system calls, no panics, no allocation when dst has room;
// names and handles alias buf.
//
// It steps over records exactly as Decode does, and stops with an error
// wrapping ErrMalformedEvent at the first record it cannot step over
// (keeping the events before it, and that record's header when its version
// is right). A malformed info record inside an otherwise sound record sets
// that FIDEvent's Err and decoding goes on with the next record.
//
// Info records: FAN_EVENT_INFO_TYPE_DFID_NAME and _DFID fill Dir (and Name),
// _FID fills Child, _PIDFD fills PidFd; a repeated one keeps the first and
// sets Err. Every other type (FAN_RENAME's OLD_/NEW_DFID_NAME, ERROR,
// RANGE, MNT, and types newer than this code) is skipped.
func DecodeFID(buf []byte, dst []FIDEvent) ([]FIDEvent, error) {
	dst = dst[:0]
	for len(buf) > 0 {
		h, ok, info, rest, err := nextRecord(buf)
		if !ok {
			return dst, err
		}
		e := FIDEvent{Mask: h.mask, Fd: h.fd, Pid: h.pid, PidFd: NoPidFd}
		if err != nil {
			e.Err = err
			return append(dst, e), err
		}
		decodeFIDInfo(info, &e)
		dst = append(dst, e)
		buf = rest
	}
	return dst, nil
}

// decodeFIDInfo walks the info records of one event.
func decodeFIDInfo(info []byte, e *FIDEvent) {
	for len(info) > 0 {
		typ, rec, next, err := nextInfo(info)
		if err != nil {
			e.Err = err
			return
		}
		info = next
		switch typ {
		case infoTypeDfidName, infoTypeDfid:
			if e.Dir.Valid() {
				e.Err = errFIDDuplicate
				continue
			}
			fid, rest, err := decodeFIDRecord(rec)
			if err != nil {
				e.Err = err
				continue
			}
			if typ == infoTypeDfidName {
				end := bytes.IndexByte(rest, 0)
				if end < 0 {
					e.Err = errFIDName
					continue
				}
				e.Name = rest[:end:end]
			}
			e.Dir = fid
		case infoTypeFid:
			if e.Child.Valid() {
				e.Err = errFIDDuplicate
				continue
			}
			fid, _, err := decodeFIDRecord(rec)
			if err != nil {
				e.Err = err
				continue
			}
			e.Child = fid
		case infoTypePidFd:
			decodePidFd(rec, &e.PidFd, &e.Err)
		}
	}
}

// decodeFIDRecord decodes the fsid and file handle of one
// struct fanotify_event_info_fid and returns the bytes after the handle
// (the name, for the *DFID_NAME types).
func decodeFIDRecord(rec []byte) (FID, []byte, error) {
	if len(rec) < fidHeaderLen {
		return FID{}, nil, errFIDRecord
	}
	hb := uint64(binary.NativeEndian.Uint32(rec[offFidHandleBytes:]))
	if hb > uint64(len(rec)-fidHeaderLen) {
		return FID{}, nil, errFIDRecord
	}
	end := fidHeaderLen + int(hb)
	return FID{
		Fsid: [2]int32{
			int32(binary.NativeEndian.Uint32(rec[offFidFsid:])),
			int32(binary.NativeEndian.Uint32(rec[offFidFsid+4:])),
		},
		HandleType: int32(binary.NativeEndian.Uint32(rec[offFidHandleType:])),
		Handle:     rec[fidHeaderLen:end:end],
	}, rec[end:], nil
}
