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
		h, ok, info, rest, err := nextRecord(buf)
		if !ok {
			return dst, err
		}
		e := Event{Mask: h.mask, Fd: h.fd, Pid: h.pid, PidFd: NoPidFd}
		if err != nil {
			// The header is trustworthy enough to hold the fd, but the
			// next record's start is unknown: keep the fd, stop here.
			e.Err = err
			return append(dst, e), err
		}
		for len(info) > 0 {
			typ, rec, next, err := nextInfo(info)
			if err != nil {
				e.Err = err
				break
			}
			if typ == infoTypePidFd {
				decodePidFd(rec, &e.PidFd, &e.Err)
			}
			info = next
		}
		dst = append(dst, e)
		buf = rest
	}
	return dst, nil
}

// header is the fixed part of struct fanotify_event_metadata.
type header struct {
	mask     uint64
	fd, pid  int32
	eventLen uint32
}

// nextRecord splits the first event record off buf, for both decoders.
// ok is false when buf does not start with a record of the known version
// (nothing can be trusted, not even an fd). With ok and errEventLen the fd
// is real and must be answered and closed, but the record's length is
// wrong, so the rest of buf is unusable.
func nextRecord(buf []byte) (h header, ok bool, info, rest []byte, err error) {
	if len(buf) < metadataLen {
		return h, false, nil, nil, errShortRecord
	}
	if buf[offVers] != metadataVersion {
		return h, false, nil, nil, errVersion
	}
	h = header{
		mask:     binary.NativeEndian.Uint64(buf[offMask:]),
		fd:       int32(binary.NativeEndian.Uint32(buf[offFd:])),
		pid:      int32(binary.NativeEndian.Uint32(buf[offPid:])),
		eventLen: binary.NativeEndian.Uint32(buf[offEventLen:]),
	}
	metaLen := uint32(binary.NativeEndian.Uint16(buf[offMetadataLen:]))
	if h.eventLen < metadataLen || uint64(h.eventLen) > uint64(len(buf)) ||
		metaLen < metadataLen || metaLen > h.eventLen {
		return h, true, nil, nil, errEventLen
	}
	return h, true, buf[metaLen:h.eventLen], buf[h.eventLen:], nil
}

// nextInfo splits the first info record off info (struct
// fanotify_event_info_header: u8 info_type, u8 pad, u16 len); rec keeps
// its header.
func nextInfo(info []byte) (typ byte, rec, rest []byte, err error) {
	if len(info) < infoHeaderLen {
		return 0, nil, nil, errInfoRecord
	}
	n := int(binary.NativeEndian.Uint16(info[2:]))
	if n < infoHeaderLen || n > len(info) {
		return 0, nil, nil, errInfoRecord
	}
	return info[0], info[:n], info[n:], nil
}

// decodePidFd reads a pidfd info record. The kernel writes one per event;
// a second one keeps the first and flags the event.
func decodePidFd(rec []byte, pidfd *int32, errp *error) {
	switch {
	case len(rec) < infoPidFdLen:
		*errp = errInfoRecord
	case *pidfd != NoPidFd:
		*errp = errDuplicatePid
	default:
		*pidfd = int32(binary.NativeEndian.Uint32(rec[infoHeaderLen:]))
	}
}
