package fanotify

import "encoding/binary"

// Decode parses the records of one read(2) from a fanotify descriptor and
// appends them to dst[:0]. It is a pure function over bytes: it makes no
// system calls, never panics, and does not allocate when dst has room.
//
// Every record whose 24-byte header is present with the expected version
// yields an Event carrying its Fd and Pid, even when the rest of the record
// is malformed; such an Event has Err set. A caller therefore never loses a
// descriptor: it must answer and close every returned Event, whether or not
// Decode returned an error.
//
// Decode stops and returns an error wrapping ErrMalformedEvent at the first
// record it cannot step over: a header cut short, a version other than
// FANOTIFY_METADATA_VERSION (whose layout is unknown, so no descriptor is
// taken from it), or an event_len outside the buffer. Info records of an
// unknown type are skipped; FAN_EVENT_INFO_TYPE_PIDFD fills Event.PidFd.
func Decode(buf []byte, dst []Event) ([]Event, error) {
	dst = dst[:0]
	for len(buf) > 0 {
		if len(buf) < metadataLen {
			return dst, errShortRecord
		}
		if buf[offVers] != metadataVersion {
			return dst, errVersion
		}
		eventLen := binary.NativeEndian.Uint32(buf[offEventLen:])
		metaLen := uint32(binary.NativeEndian.Uint16(buf[offMetadataLen:]))
		e := Event{
			Mask:  binary.NativeEndian.Uint64(buf[offMask:]),
			Fd:    int32(binary.NativeEndian.Uint32(buf[offFd:])),
			Pid:   int32(binary.NativeEndian.Uint32(buf[offPid:])),
			PidFd: NoPidFd,
		}
		if eventLen < metadataLen || uint64(eventLen) > uint64(len(buf)) ||
			metaLen < metadataLen || metaLen > eventLen {
			// The header is trustworthy enough to hold the fd, but the
			// next record's start is unknown: keep the fd, stop here.
			e.Err = errEventLen
			return append(dst, e), errEventLen
		}
		decodeInfo(buf[metaLen:eventLen], &e)
		dst = append(dst, e)
		buf = buf[eventLen:]
	}
	return dst, nil
}

// decodeInfo walks the info records that follow the metadata
// (struct fanotify_event_info_header: u8 info_type, u8 pad, u16 len).
func decodeInfo(info []byte, e *Event) {
	for len(info) > 0 {
		if len(info) < infoHeaderLen {
			e.Err = errInfoRecord
			return
		}
		typ := info[0]
		n := int(binary.NativeEndian.Uint16(info[2:]))
		if n < infoHeaderLen || n > len(info) {
			e.Err = errInfoRecord
			return
		}
		if typ == infoTypePidFd {
			switch {
			case n < infoPidFdLen:
				e.Err = errInfoRecord
			case e.PidFd != NoPidFd:
				// The kernel writes one pidfd record per event; keep
				// the first and flag the record.
				e.Err = errDuplicatePid
			default:
				e.PidFd = int32(binary.NativeEndian.Uint32(info[4:]))
			}
		}
		info = info[n:]
	}
}
