package fanotify

import (
	"encoding/binary"
	"errors"
	"testing"
)

// appendEvent encodes one struct fanotify_event_metadata, followed by a
// pidfd info record when pidfd is not nil.
func appendEvent(b []byte, mask uint64, fd, pid int32, pidfd *int32) []byte {
	n := uint32(metadataLen)
	if pidfd != nil {
		n += infoPidFdLen
	}
	b = binary.NativeEndian.AppendUint32(b, n)
	b = append(b, metadataVersion, 0)
	b = binary.NativeEndian.AppendUint16(b, metadataLen)
	b = binary.NativeEndian.AppendUint64(b, mask)
	b = binary.NativeEndian.AppendUint32(b, uint32(fd))
	b = binary.NativeEndian.AppendUint32(b, uint32(pid))
	if pidfd != nil {
		b = append(b, infoTypePidFd, 0)
		b = binary.NativeEndian.AppendUint16(b, infoPidFdLen)
		b = binary.NativeEndian.AppendUint32(b, uint32(*pidfd))
	}
	return b
}

func ptr(v int32) *int32 { return &v }

func TestDecode(t *testing.T) {
	two := appendEvent(nil, OpenPerm, 7, 100, nil)
	two = appendEvent(two, AccessPerm|OnDir, 8, 101, ptr(9))

	tests := []struct {
		name    string
		buf     []byte
		want    []Event
		wantErr error
	}{
		{name: "empty", buf: nil},
		{
			name: "two events, one with pidfd",
			buf:  two,
			want: []Event{
				{Mask: OpenPerm, Fd: 7, Pid: 100, PidFd: NoPidFd},
				{Mask: AccessPerm | OnDir, Fd: 8, Pid: 101, PidFd: 9},
			},
		},
		{
			name: "overflow has no fd",
			buf:  appendEvent(nil, QueueOverflow, NoFd, 0, nil),
			want: []Event{{Mask: QueueOverflow, Fd: NoFd, PidFd: NoPidFd}},
		},
		{
			name: "process gone: FAN_NOPIDFD",
			buf:  appendEvent(nil, OpenExecPerm, 3, 5, ptr(NoPidFd)),
			want: []Event{{Mask: OpenExecPerm, Fd: 3, Pid: 5, PidFd: NoPidFd}},
		},
		{
			name:    "short trailing bytes keep earlier events",
			buf:     append(appendEvent(nil, OpenPerm, 7, 1, nil), 1, 2, 3),
			want:    []Event{{Mask: OpenPerm, Fd: 7, Pid: 1, PidFd: NoPidFd}},
			wantErr: errShortRecord,
		},
		{
			name: "bad version yields no fd",
			buf: func() []byte {
				b := appendEvent(nil, OpenPerm, 7, 1, nil)
				b[offVers] = 2
				return b
			}(),
			wantErr: errVersion,
		},
		{
			name: "event_len beyond buffer keeps the fd",
			buf: func() []byte {
				b := appendEvent(nil, OpenPerm, 7, 1, nil)
				binary.NativeEndian.PutUint32(b, 4096)
				return b
			}(),
			want:    []Event{{Mask: OpenPerm, Fd: 7, Pid: 1, PidFd: NoPidFd, Err: errEventLen}},
			wantErr: errEventLen,
		},
		{
			name: "event_len below header keeps the fd",
			buf: func() []byte {
				b := appendEvent(nil, OpenPerm, 7, 1, nil)
				binary.NativeEndian.PutUint32(b, 0)
				return b
			}(),
			want:    []Event{{Mask: OpenPerm, Fd: 7, Pid: 1, PidFd: NoPidFd, Err: errEventLen}},
			wantErr: errEventLen,
		},
		{
			name: "broken info record keeps the fd and the next event",
			buf: func() []byte {
				b := appendEvent(nil, OpenPerm, 7, 1, ptr(11))
				binary.NativeEndian.PutUint16(b[metadataLen+2:], 200) // info len past the event
				return appendEvent(b, OpenPerm, 8, 2, nil)
			}(),
			want: []Event{
				{Mask: OpenPerm, Fd: 7, Pid: 1, PidFd: NoPidFd, Err: errInfoRecord},
				{Mask: OpenPerm, Fd: 8, Pid: 2, PidFd: NoPidFd},
			},
		},
		{
			name: "unknown info record is skipped",
			buf: func() []byte {
				b := appendEvent(nil, OpenPerm, 7, 1, ptr(11))
				b[metadataLen] = 99
				return b
			}(),
			want: []Event{{Mask: OpenPerm, Fd: 7, Pid: 1, PidFd: NoPidFd}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.buf, make([]Event, 0, 4))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformedEvent) {
				t.Errorf("err %v does not match ErrMalformedEvent", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzDecode checks that Decode never panics and never loses or invents a
// descriptor: every record header it walks over with a valid version yields
// an Event whose Fd is the one in that header.
func FuzzDecode(f *testing.F) {
	f.Add(appendEvent(nil, OpenPerm, 7, 100, nil))
	f.Add(appendEvent(appendEvent(nil, OpenPerm, 7, 100, ptr(8)), AccessPerm, 9, 101, ptr(NoPidFd)))
	f.Add(appendEvent(nil, QueueOverflow, NoFd, 0, nil))
	f.Add(append(appendEvent(nil, OpenExecPerm, 7, 1, nil), 0, 0, 0))
	f.Add([]byte{24, 0, 0, 0, 3, 0, 24, 0})
	f.Fuzz(func(t *testing.T, buf []byte) {
		evs, err := Decode(buf, nil)
		if err != nil && !errors.Is(err, ErrMalformedEvent) {
			t.Fatalf("error %v does not match ErrMalformedEvent", err)
		}
		if len(evs) > len(buf)/metadataLen {
			t.Fatalf("%d events from %d bytes", len(evs), len(buf))
		}
		// Walk the headers independently and compare fds.
		off := 0
		for i, e := range evs {
			if off+metadataLen > len(buf) || buf[off+offVers] != metadataVersion {
				t.Fatalf("event %d decoded from a missing or foreign header", i)
			}
			if fd := int32(binary.NativeEndian.Uint32(buf[off+offFd:])); e.Fd != fd {
				t.Fatalf("event %d: fd %d, header says %d", i, e.Fd, fd)
			}
			if e.Err == errEventLen {
				if i != len(evs)-1 || err != errEventLen {
					t.Fatalf("event %d has a bad length but decoding went on", i)
				}
				return
			}
			off += int(binary.NativeEndian.Uint32(buf[off:]))
		}
		if err == nil && off != len(buf) {
			t.Fatalf("decoded %d of %d bytes without error", off, len(buf))
		}
		if err != nil && off+metadataLen <= len(buf) && buf[off+offVers] == metadataVersion {
			t.Fatalf("stopped at a valid header at %d: %v", off, err)
		}
	})
}

// BenchmarkDecode decodes a 4 KiB read of permission events with pidfds.
func BenchmarkDecode(b *testing.B) {
	var buf []byte
	for len(buf)+metadataLen+infoPidFdLen <= 4096 {
		buf = appendEvent(buf, OpenPerm, 10, 1234, ptr(11))
	}
	dst := make([]Event, 0, 4096/metadataLen)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		evs, err := Decode(buf, dst)
		if err != nil || len(evs) != len(buf)/(metadataLen+infoPidFdLen) {
			b.Fatalf("decoded %d events, err %v", len(evs), err)
		}
	}
}
