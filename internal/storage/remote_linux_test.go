//go:build linux

package storage

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// fakeInfo is an fs.FileInfo with a chosen st_blocks, as os.Stat returns
// for files on a cloud mount.
type fakeInfo struct {
	size, blocks int64
	mode         fs.FileMode
}

func (f fakeInfo) Name() string       { return "f" }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Size: f.size, Blocks: f.blocks} }

var (
	cloudInfo   = Info{Class: ClassCloud, Provider: ProviderRclone, FSType: "fuse.rclone", FUSE: true}
	nfsInfo     = Info{Class: ClassNetwork, Provider: ProviderNFS, FSType: "nfs4"}
	fuseInfo    = Info{Class: ClassLocal, Provider: ProviderFUSE, FSType: "fuse.mergerfs", FUSE: true}
	tmpfsInfo   = Info{Class: ClassLocal, FSType: "tmpfs"}
	overlayInfo = Info{Class: ClassOverlay, FSType: "overlay"}
)

func TestRemoteDataDecisions(t *testing.T) {
	tests := []struct {
		name   string
		fi     fs.FileInfo
		info   Info
		remote bool
		reason string
	}{
		{"cloud placeholder", fakeInfo{size: 1 << 20}, cloudInfo, true, ReasonNoBlocksCloud},
		{"cloud cached", fakeInfo{size: 1 << 20, blocks: 2048}, cloudInfo, false, ReasonAllocated},
		{"nfs without blocks", fakeInfo{size: 10}, nfsInfo, true, ReasonNoBlocksNet},
		{"unknown FUSE without blocks", fakeInfo{size: 10}, fuseInfo, true, ReasonNoBlocksFUSE},
		{"sparse on tmpfs", fakeInfo{size: 1 << 20}, tmpfsInfo, false, ReasonSparseLocal},
		{"sparse in a container", fakeInfo{size: 1 << 20}, overlayInfo, false, ReasonSparseLocal},
		{"empty cloud file", fakeInfo{}, cloudInfo, false, ReasonEmpty},
		{"directory", fakeInfo{mode: fs.ModeDir}, cloudInfo, false, ReasonNotRegular},
		{"nil", nil, cloudInfo, false, ReasonNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote, reason := RemoteData("", tt.fi, tt.info)
			if remote != tt.remote || reason != tt.reason {
				t.Errorf("RemoteData = %v %q, want %v %q", remote, reason, tt.remote, tt.reason)
			}
		})
	}
	// A FileInfo not made by os (no Stat_t) has no block count.
	if remote, reason := RemoteData("", noSys{fakeInfo{size: 5}}, cloudInfo); remote || reason != ReasonNoBlockCount {
		t.Errorf("no Sys: %v %q", remote, reason)
	}
	if remote, _ := RemoteDataStat("", &unix.Stat_t{Mode: unix.S_IFREG, Size: 9}, cloudInfo); !remote {
		t.Error("RemoteDataStat: placeholder not detected")
	}
	if remote, reason := RemoteDataStat("", &unix.Stat_t{Mode: unix.S_IFDIR}, cloudInfo); remote || reason != ReasonNotRegular {
		t.Error("RemoteDataStat: directory")
	}
}

type noSys struct{ fakeInfo }

func (noSys) Sys() any { return nil }

// The SMB client exposes a file's Windows attributes as the pseudo xattr
// user.cifs.dosattrib. Without an SMB server here, the same name is set as
// an ordinary user xattr on a local file and read back through a cifs Info:
// this checks the name, the size and the bit decoding, not the kernel's
// SMB client.
func TestRemoteDataWindowsAttributes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.docx")
	if err := os.WriteFile(path, []byte("local bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := func(attrs uint32) {
		t.Helper()
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], attrs)
		if err := unix.Setxattr(path, "user.cifs.dosattrib", b[:], 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				t.Skipf("user xattrs not supported on %s: %v", filepath.Dir(path), err)
			}
			t.Fatal(err)
		}
	}
	smb := Info{Class: ClassNetwork, Provider: ProviderCIFS, FSType: "cifs"}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		attrs  uint32
		remote bool
		reason string
	}{
		{0x20, false, ReasonAllocated},                               // ARCHIVE
		{0x20 | fileAttributeOffline, true, ReasonOffline},           // HSM-tiered
		{0x20 | fileAttributeRecallOnDataAccess, true, ReasonRecall}, // cloud placeholder
		{fileAttributeRecallOnOpen, true, ReasonRecall},
	}
	for _, tt := range tests {
		set(tt.attrs)
		remote, reason := RemoteData(path, fi, smb)
		if remote != tt.remote || reason != tt.reason {
			t.Errorf("attrs %#x: %v %q, want %v %q", tt.attrs, remote, reason, tt.remote, tt.reason)
		}
	}
	// NTFS drivers: system.ntfs_attrib_be is big-endian. A user xattr of
	// that name cannot be set, so only the selection is checked here.
	if name, be := attributeXattr("ntfs3"); name != "system.ntfs_attrib_be" || !be {
		t.Errorf("ntfs3 attribute xattr %q big-endian %v", name, be)
	}
	if name, _ := attributeXattr("fuseblk"); name != "system.ntfs_attrib_be" {
		t.Errorf("ntfs-3g attribute xattr %q", name)
	}
	// The attribute is only consulted where the filesystem defines it.
	set(fileAttributeOffline)
	if remote, _ := RemoteData(path, fi, tmpfsInfo); remote {
		t.Error("user.cifs.dosattrib consulted on a non-SMB mount")
	}
	// Without a path the xattr is not read.
	if remote, _ := RemoteData("", fi, smb); remote {
		t.Error("xattr read without a path")
	}
}

// As root: a tmpfs of our own shows up in the live table as local, and a
// sparse file on it is not remote data; the same stat on a cloud mount
// would be.
func TestLiveTmpfsSparseFile(t *testing.T) {
	dir := testutil.MountTmpfs(t) // skips without root, fails in CI
	s, err := LoadMounts("/", 0)
	if err != nil {
		t.Fatalf("LoadMounts: %v", err)
	}
	path := filepath.Join(dir, "sparse.bin")
	m, info := s.Lookup(path)
	if m.MountPoint != dir || m.FSType != "tmpfs" || info.Class != ClassLocal {
		t.Fatalf("Lookup(%s) = %s %s %s (%s), want our tmpfs, local", path, m.MountPoint, m.FSType, info.Class, info.Reason)
	}

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Blocks != 0 || fi.Size() != 1<<20 {
		t.Fatalf("truncate made %d bytes in %d blocks, want a hole", fi.Size(), st.Blocks)
	}
	if remote, reason := RemoteData(path, fi, info); remote {
		t.Errorf("sparse file on tmpfs reported remote: %s", reason)
	}
	if remote, reason := RemoteData(path, fi, cloudInfo); !remote || reason != ReasonNoBlocksCloud {
		t.Errorf("same stat on a cloud mount: %v %q", remote, reason)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if remote, _ := RemoteDataStat(path, &st, cloudInfo); !remote {
		t.Error("RemoteDataStat disagrees with RemoteData")
	}

	// Written data has blocks: not remote even on a cloud mount.
	full := filepath.Join(dir, "full.bin")
	if err := os.WriteFile(full, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err = os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if remote, reason := RemoteData(full, fi, cloudInfo); remote || reason != ReasonAllocated {
		t.Errorf("written file: %v %q", remote, reason)
	}
}

// As root: btrfs reports an anonymous device (major 0) in mountinfo, so
// the device is found through the source node under root.
func TestRemovableThroughDeviceNode(t *testing.T) {
	testutil.RequireRoot(t)
	root := sysfsFixture(t)
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "dev", "sdb1"), unix.S_IFBLK|0o600, int(unix.Mkdev(8, 17))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	m := mountinfo.Mount{ID: 1, Major: 0, Minor: 51, Root: "/@", MountPoint: "/media/usb", Options: "rw", FSType: "btrfs", Source: "/dev/sdb1", SuperOptions: "rw,subvol=/@"}
	if info := ClassifyAt(root, m); info.Class != ClassRemovable || info.Provider != ProviderUSB {
		t.Errorf("btrfs on a USB stick: %+v", info)
	}
	m.Source = "/dev/missing"
	if info := ClassifyAt(root, m); info.Class != ClassLocal {
		t.Errorf("missing node: %+v", info)
	}
}

func BenchmarkRemoteDataStat(b *testing.B) {
	st := &unix.Stat_t{Mode: unix.S_IFREG | 0o644, Size: 1 << 20}
	b.ReportAllocs()
	for b.Loop() {
		RemoteDataStat("", st, cloudInfo)
	}
}
