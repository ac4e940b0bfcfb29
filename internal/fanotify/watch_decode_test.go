package fanotify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// fidRecord encodes one struct fanotify_event_info_fid of type typ; name is
// appended with its NUL (for the *DFID_NAME types) when not nil, and the
// record is padded to 4 bytes as the kernel pads it.
func fidRecord(typ byte, fsid [2]int32, htype int32, handle []byte, name *string) []byte {
	b := []byte{typ, 0, 0, 0}
	b = binary.NativeEndian.AppendUint32(b, uint32(fsid[0]))
	b = binary.NativeEndian.AppendUint32(b, uint32(fsid[1]))
	b = binary.NativeEndian.AppendUint32(b, uint32(len(handle)))
	b = binary.NativeEndian.AppendUint32(b, uint32(htype))
	b = append(b, handle...)
	if name != nil {
		b = append(b, *name...)
		b = append(b, 0)
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	binary.NativeEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// fidEvent encodes one event header followed by records.
func fidEvent(b []byte, mask uint64, pid int32, records ...[]byte) []byte {
	n := metadataLen
	for _, r := range records {
		n += len(r)
	}
	b = binary.NativeEndian.AppendUint32(b, uint32(n))
	b = append(b, metadataVersion, 0)
	b = binary.NativeEndian.AppendUint16(b, metadataLen)
	b = binary.NativeEndian.AppendUint64(b, mask)
	b = binary.NativeEndian.AppendUint32(b, 0xffff_ffff) // FAN_NOFD
	b = binary.NativeEndian.AppendUint32(b, uint32(pid))
	for _, r := range records {
		b = append(b, r...)
	}
	return b
}

func str(s string) *string { return &s }

var (
	testFsid    = [2]int32{0x41dbab6c, -0x4f62651d}
	dirHandle   = []byte{0x13, 0xba, 0xce, 0xdb, 1, 0, 0, 0, 0, 0, 0, 0}
	childHandle = []byte{0xe9, 0xaa, 0xa7, 0x32, 2, 0, 0, 0, 0, 0, 0, 0}
)

// kernelCreate is a FAN_CREATE event as Linux 6.18 wrote it for a group
// with FAN_REPORT_DFID_NAME_TARGET on tmpfs (captured with a probe):
// directory handle and name "a", then the child's handle.
var kernelCreate = []byte{
	0x5c, 0x00, 0x00, 0x00, 0x03, 0x00, 0x18, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0x4a, 0x18, 0x00, 0x00, 0x02, 0x00, 0x24, 0x00, 0x6c, 0xab, 0xdb, 0x41,
	0xe3, 0x9a, 0x9d, 0xb0, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x13, 0xba, 0xce, 0xdb,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00,
	0x6c, 0xab, 0xdb, 0x41, 0xe3, 0x9a, 0x9d, 0xb0, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0xe9, 0xaa, 0xa7, 0x32, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

func TestDecodeFID(t *testing.T) {
	if !littleEndian() {
		t.Skip("captured kernel bytes are little-endian")
	}
	dir := FID{Fsid: testFsid, HandleType: 1, Handle: dirHandle}
	child := FID{Fsid: testFsid, HandleType: 1, Handle: childHandle}
	dfidName := func(name string) []byte { return fidRecord(infoTypeDfidName, testFsid, 1, dirHandle, str(name)) }
	fid := fidRecord(infoTypeFid, testFsid, 1, childHandle, nil)

	tests := []struct {
		name    string
		buf     []byte
		want    []FIDEvent
		wantErr error
	}{
		{name: "empty", buf: nil},
		{
			name: "captured create",
			buf:  kernelCreate,
			want: []FIDEvent{{Mask: Create, Pid: 0x184a, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("a"), Child: child}},
		},
		{
			name: "two events, merged mask, directory child",
			buf: fidEvent(fidEvent(nil, Create|MovedFrom, 7, dfidName("x"), fid),
				Delete|OnDir, 8, dfidName("a-longer-name"), fid),
			want: []FIDEvent{
				{Mask: Create | MovedFrom, Pid: 7, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("x"), Child: child},
				{Mask: Delete | OnDir, Pid: 8, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("a-longer-name"), Child: child},
			},
		},
		{
			name: "no target fid (FAN_REPORT_DFID_NAME)",
			buf:  fidEvent(nil, MovedTo, 9, dfidName("b")),
			want: []FIDEvent{{Mask: MovedTo, Pid: 9, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("b")}},
		},
		{
			name: "overflow has no records",
			buf:  fidEvent(nil, QueueOverflow, 0),
			want: []FIDEvent{{Mask: QueueOverflow, Fd: NoFd, PidFd: NoPidFd}},
		},
		{
			name: "nameless attrib event: child only",
			buf:  fidEvent(nil, 0x4, 3, fid),
			want: []FIDEvent{{Mask: 0x4, Pid: 3, Fd: NoFd, PidFd: NoPidFd, Child: child}},
		},
		{
			name: "DFID without name",
			buf:  fidEvent(nil, 0x4|OnDir, 3, fidRecord(infoTypeDfid, testFsid, 1, dirHandle, nil)),
			want: []FIDEvent{{Mask: 0x4 | OnDir, Pid: 3, Fd: NoFd, PidFd: NoPidFd, Dir: dir}},
		},
		{
			name: "unknown and rename records are skipped",
			buf: fidEvent(nil, Create, 1,
				[]byte{99, 0, 8, 0, 1, 2, 3, 4},
				fidRecord(infoTypeOldDfidName, testFsid, 1, childHandle, str("old")),
				dfidName("n"),
				fidRecord(infoTypeNewDfidName, testFsid, 1, childHandle, str("new"))),
			want: []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("n")}},
		},
		{
			name: "pidfd record is taken so it can be closed",
			buf:  fidEvent(nil, Create, 1, dfidName("n"), []byte{infoTypePidFd, 0, 8, 0, 5, 0, 0, 0}),
			want: []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: 5, Dir: dir, Name: []byte("n")}},
		},
		{
			name: "name without NUL",
			buf: func() []byte {
				r := fidRecord(infoTypeDfidName, testFsid, 1, dirHandle, nil)
				r = append(r, 'a', 'b', 'c', 'd')
				binary.NativeEndian.PutUint16(r[2:], uint16(len(r)))
				return fidEvent(nil, Create, 1, r, fid)
			}(),
			want: []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Child: child, Err: errFIDName}},
		},
		{
			name: "handle_bytes beyond record, next event still decoded",
			buf: func() []byte {
				r := dfidName("n")
				binary.NativeEndian.PutUint32(r[offFidHandleBytes:], 200)
				return fidEvent(fidEvent(nil, Create, 1, r, fid), Delete, 2, dfidName("m"))
			}(),
			want: []FIDEvent{
				{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Child: child, Err: errFIDRecord},
				{Mask: Delete, Pid: 2, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("m")},
			},
		},
		{
			name: "record shorter than fid header",
			buf:  fidEvent(nil, Create, 1, []byte{infoTypeFid, 0, 8, 0, 0, 0, 0, 0}),
			want: []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Err: errFIDRecord}},
		},
		{
			name: "duplicate records keep the first",
			buf:  fidEvent(nil, Create, 1, dfidName("first"), fid, dfidName("second"), fidRecord(infoTypeFid, testFsid, 1, dirHandle, nil)),
			want: []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("first"), Child: child, Err: errFIDDuplicate}},
		},
		{
			name: "info record length out of bounds",
			buf: func() []byte {
				b := fidEvent(nil, Create, 1, dfidName("n"))
				binary.NativeEndian.PutUint16(b[metadataLen+2:], 400)
				return b
			}(),
			want: []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Err: errInfoRecord}},
		},
		{
			name:    "short trailing bytes keep earlier events",
			buf:     append(fidEvent(nil, Delete, 4, dfidName("z")), 1, 2, 3),
			want:    []FIDEvent{{Mask: Delete, Pid: 4, Fd: NoFd, PidFd: NoPidFd, Dir: dir, Name: []byte("z")}},
			wantErr: errShortRecord,
		},
		{
			name: "bad version",
			buf: func() []byte {
				b := fidEvent(nil, Create, 1, dfidName("n"))
				b[offVers] = 4
				return b
			}(),
			wantErr: errVersion,
		},
		{
			name: "event_len beyond buffer",
			buf: func() []byte {
				b := fidEvent(nil, Create, 1)
				binary.NativeEndian.PutUint32(b, 4096)
				return b
			}(),
			want:    []FIDEvent{{Mask: Create, Pid: 1, Fd: NoFd, PidFd: NoPidFd, Err: errEventLen}},
			wantErr: errEventLen,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFID(tt.buf, nil)
			if err != tt.wantErr {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n\t%+v\nwant\n\t%+v", got, tt.want)
			}
		})
	}
}

func littleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

func TestDecodeFIDAllocs(t *testing.T) {
	buf := fidEvent(nil, Create, 1, fidRecord(infoTypeDfidName, testFsid, 1, dirHandle, str("name")),
		fidRecord(infoTypeFid, testFsid, 1, childHandle, nil))
	dst := make([]FIDEvent, 0, 4)
	if n := testing.AllocsPerRun(100, func() { dst, _ = DecodeFID(buf, dst) }); n != 0 {
		t.Fatalf("DecodeFID allocates %v times per call", n)
	}
}

// FuzzDecodeFID checks that DecodeFID never panics, that every slice it
// returns lies inside the input, that names hold no NUL, and that errors
// match ErrMalformedEvent.
func FuzzDecodeFID(f *testing.F) {
	f.Add(kernelCreate)
	f.Add(fidEvent(nil, QueueOverflow, 0))
	f.Add(fidEvent(fidEvent(nil, Delete|OnDir, 2,
		fidRecord(infoTypeDfidName, testFsid, 1, dirHandle, str("d")),
		fidRecord(infoTypeFid, testFsid, 1, childHandle, nil)),
		MovedTo, 3, fidRecord(infoTypeDfid, testFsid, 1, nil, nil), []byte{infoTypePidFd, 0, 8, 0, 1, 0, 0, 0}))
	f.Add(append(kernelCreate[:40:40], 0, 0))
	f.Fuzz(func(t *testing.T, buf []byte) {
		evs, err := DecodeFID(buf, nil)
		if err != nil && !errors.Is(err, ErrMalformedEvent) {
			t.Fatalf("error %v does not match ErrMalformedEvent", err)
		}
		if len(evs) > len(buf)/metadataLen {
			t.Fatalf("%d events from %d bytes", len(evs), len(buf))
		}
		inside := func(what string, s []byte) {
			if s == nil {
				return
			}
			if len(s) > 0 && !aliases(buf, s) {
				t.Fatalf("%s does not alias the input", what)
			}
		}
		for i, e := range evs {
			if e.Err != nil && !errors.Is(e.Err, ErrMalformedEvent) {
				t.Fatalf("event %d: error %v does not match ErrMalformedEvent", i, e.Err)
			}
			inside("name", e.Name)
			inside("dir handle", e.Dir.Handle)
			inside("child handle", e.Child.Handle)
			if bytes.IndexByte(e.Name, 0) >= 0 {
				t.Fatalf("event %d: name %q holds a NUL", i, e.Name)
			}
			if e.Name != nil && !e.Dir.Valid() {
				t.Fatalf("event %d: name without directory", i)
			}
		}
		// Same records as Decode: the permission decoder and this one
		// step over headers identically.
		pevs, perr := Decode(buf, nil)
		if len(pevs) != len(evs) || (perr == nil) != (err == nil) {
			t.Fatalf("DecodeFID: %d events, %v; Decode: %d events, %v", len(evs), err, len(pevs), perr)
		}
		for i := range evs {
			if evs[i].Mask != pevs[i].Mask || evs[i].Fd != pevs[i].Fd || evs[i].Pid != pevs[i].Pid {
				t.Fatalf("event %d: header differs from Decode's", i)
			}
		}
	})
}

// aliases reports whether s lies inside buf.
func aliases(buf, s []byte) bool {
	if len(buf) == 0 || len(s) == 0 {
		return false
	}
	for i := range buf {
		if &buf[i] == &s[0] {
			return i+len(s) <= len(buf)
		}
	}
	return false
}

// BenchmarkDecodeFID decodes a 4 KiB read of create events with child
// handles.
func BenchmarkDecodeFID(b *testing.B) {
	var buf []byte
	dfid := fidRecord(infoTypeDfidName, testFsid, 1, dirHandle, str("some-file-name.txt"))
	fid := fidRecord(infoTypeFid, testFsid, 1, childHandle, nil)
	per := metadataLen + len(dfid) + len(fid)
	for len(buf)+per <= 4096 {
		buf = fidEvent(buf, Create, 1234, dfid, fid)
	}
	dst := make([]FIDEvent, 0, 4096/metadataLen)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		evs, err := DecodeFID(buf, dst)
		if err != nil || len(evs) != len(buf)/per {
			b.Fatalf("decoded %d events, err %v", len(evs), err)
		}
	}
}
