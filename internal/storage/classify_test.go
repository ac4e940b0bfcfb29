package storage

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// corpusCase is one line of testdata/corpus.mountinfo with its expectation.
type corpusCase struct {
	lineNo   int
	line     string
	class    Class
	provider Provider
	ref      string
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	f, err := os.Open("testdata/corpus.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cases   []corpusCase
		pending *corpusCase
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# want:"):
			w := strings.Fields(strings.TrimPrefix(line, "# want:"))
			if len(w) != 3 {
				t.Fatalf("corpus line %d: want CLASS PROVIDER REF, got %q", n, line)
			}
			c := corpusCase{class: Class(w[0]), provider: Provider(w[1]), ref: w[2]}
			if c.provider == "-" {
				c.provider = ""
			}
			pending = &c
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			if pending == nil {
				t.Fatalf("corpus line %d has no # want: line", n)
			}
			pending.lineNo, pending.line = n, line
			cases = append(cases, *pending)
			pending = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// sysfsFixture builds a /sys tree under a temp root with:
//
//	8:17  sdb1 on a USB bus (USB stick)
//	11:0  sr0, an ATA optical drive, removable=1
//	179:1 mmcblk1p1, an SD card (device/type SD)
//	253:3 dm-3 (LUKS), whose slave sdc1 is on a USB bus
//	8:1   sda1, an internal SATA disk, removable=0
func sysfsFixture(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	mk := func(rel string, files map[string]string) {
		dir := filepath.Join(root, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(rel, target string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	usb := "sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"
	mk(usb, map[string]string{"removable": "0\n", "sdb1/partition": "1\n"})
	link("sys/dev/block/8:17", "../../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1")

	mk("sys/devices/pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sr0", map[string]string{"removable": "1\n"})
	link("sys/dev/block/11:0", "../../devices/pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sr0")

	mk("sys/devices/pci0000:00/0000:00:1e.6/mmc_host/mmc1/mmc1:aaaa/block/mmcblk1", map[string]string{
		"removable": "0\n", "device/type": "SD\n", "mmcblk1p1/partition": "1\n",
	})
	link("sys/dev/block/179:1", "../../devices/pci0000:00/0000:00:1e.6/mmc_host/mmc1/mmc1:aaaa/block/mmcblk1/mmcblk1p1")

	mk("sys/devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0/host7/target7:0:0/7:0:0:0/block/sdc", map[string]string{
		"removable": "0\n", "sdc1/partition": "1\n",
	})
	mk("sys/devices/virtual/block/dm-3", map[string]string{"removable": "0\n", "dm/name": "luks-7f0e\n"})
	link("sys/devices/virtual/block/dm-3/slaves/sdc1", "../../../../pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0/host7/target7:0:0/7:0:0:0/block/sdc/sdc1")
	link("sys/dev/block/253:3", "../../devices/virtual/block/dm-3")

	mk("sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", map[string]string{
		"removable": "0\n", "sda1/partition": "1\n",
	})
	link("sys/dev/block/8:1", "../../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1")
	return root
}

// Every corpus line comes out with the expected class and provider, and
// the reason is never empty. Lines expected local/other than removable give
// the same answer without the sysfs fixture.
func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 40 {
		t.Fatalf("corpus has %d cases, want at least 40", len(cases))
	}
	root := sysfsFixture(t)
	seenClass := map[Class]bool{}
	seenProvider := map[Provider]bool{}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			ms, err := mountinfo.Parse(strings.NewReader(c.line))
			if err != nil || len(ms) != 1 {
				t.Fatalf("line %d does not parse: %v", c.lineNo, err)
			}
			info := ClassifyAt(root, ms[0])
			if info.Class != c.class || info.Provider != c.provider {
				t.Errorf("line %d %s: got %s/%s (%s), want %s/%s", c.lineNo, ms[0].MountPoint,
					info.Class, info.Provider, info.Reason, c.class, c.provider)
			}
			if info.Reason == "" || info.FSType != ms[0].FSType {
				t.Errorf("line %d: reason %q fstype %q", c.lineNo, info.Reason, info.FSType)
			}
			if c.class != ClassRemovable {
				if plain := Classify(ms[0]); plain.Class != c.class || plain.Provider != c.provider {
					t.Errorf("line %d: Classify without sysfs gave %s/%s", c.lineNo, plain.Class, plain.Provider)
				}
			}
		})
		seenClass[c.class] = true
		seenProvider[c.provider] = true
	}
	for _, c := range Classes() {
		if !seenClass[c] {
			t.Errorf("corpus has no %s line", c)
		}
	}
	for _, p := range []Provider{
		ProviderAzureFiles, ProviderAzureBlob, ProviderAWSEFS, ProviderAWSFSxLustre, ProviderAWSFSxONTAP,
		ProviderAWSFSxOpenZFS, ProviderAWSFSxWindows, ProviderAWSS3, ProviderGCS, ProviderRclone,
		ProviderOneDrive, ProviderNFS, ProviderCIFS, ProviderCeph, ProviderGlusterFS, ProviderVirtioFS,
		Provider9P, ProviderVBoxSF, ProviderVMHGFS, ProviderParallels, ProviderUSB, ProviderSDCard,
	} {
		if !seenProvider[p] {
			t.Errorf("corpus has no %s line", p)
		}
	}
}

// The reason names the signal a user would check.
func TestClassifyReasons(t *testing.T) {
	tests := []struct {
		line    string
		mention []string
	}{
		{"132 28 0:122 / /data rw,relatime - nfs4 127.0.0.1:/ rw,vers=4.1,port=20376,addr=127.0.0.1",
			[]string{"port=20376", "efs-utils", "127.0.0.1"}},
		{"120 28 0:110 / /mnt/az rw - cifs //acct.file.core.windows.net/share rw,vers=3.1.1",
			[]string{"acct.file.core.windows.net", "Azure Files"}},
		{"114 28 0:103 / /mnt/p9 rw - 9p host rw,trans=tcp", []string{"trans=tcp"}},
		{"88 22 0:60 / /mnt/pool rw - fuse.mergerfs pool rw", []string{"mergerfs", "assumed local"}},
		{"89 22 0:61 / /mnt/x rw - weirdfs srv:/export rw", []string{"weirdfs", "network-style source"}},
		{"90 22 0:62 / /mnt/y rw - weirdfs none rw", []string{"weirdfs", "assumed local"}},
	}
	for _, tt := range tests {
		ms, err := mountinfo.Parse(strings.NewReader(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		info := Classify(ms[0])
		for _, w := range tt.mention {
			if !strings.Contains(info.Reason, w) {
				t.Errorf("%s: reason %q does not mention %q", ms[0].MountPoint, info.Reason, w)
			}
		}
	}
}

// Case, sovereign clouds and look-alikes.
func TestClassifyHostMatching(t *testing.T) {
	tests := []struct {
		fstype, source string
		class          Class
		provider       Provider
	}{
		{"cifs", "//ACCT.FILE.CORE.WINDOWS.NET/share", ClassCloud, ProviderAzureFiles},
		{"cifs", "//acct.file.core.chinacloudapi.cn/share", ClassCloud, ProviderAzureFiles},
		{"nfs4", "acct.file.core.usgovcloudapi.net:/acct/share", ClassCloud, ProviderAzureFiles},
		{"cifs", "//file.core.windows.net.evil.example/share", ClassNetwork, ProviderCIFS},
		{"nfs4", "fs-1234.efs.cn-north-1.amazonaws.com.cn:/", ClassCloud, ProviderAWSEFS},
		{"nfs4", "efs.example.com:/", ClassNetwork, ProviderNFS},
		{"nfs4", "myfs-1.efs.internal:/", ClassNetwork, ProviderNFS},
		{"nfs", "127.0.0.1:/", ClassNetwork, ProviderNFS}, // no port, no v4: not efs-utils
		{"lustre", "10.0.0.5@tcp:/fsxdata", ClassNetwork, ProviderLustre},
		{"fuse", "unknown-daemon", ClassLocal, ProviderFUSE},
		{"fuse.newsshclient", "me@host:/srv", ClassNetwork, ProviderFUSE},
		{"fuse", "//nas/share", ClassNetwork, ProviderFUSE},
		{"fuse.rclone", "OneDrive-Work:Docs", ClassCloud, ProviderOneDrive},
		{"fuse.rclone", "s3:bucket", ClassCloud, ProviderRclone},
		{"9p", "share", ClassNetwork, Provider9P},
	}
	for _, tt := range tests {
		m := mountinfo.Mount{ID: 1, MountPoint: "/m", Root: "/", Options: "rw", FSType: tt.fstype, Source: tt.source, SuperOptions: "rw"}
		info := Classify(m)
		if info.Class != tt.class || info.Provider != tt.provider {
			t.Errorf("%s %s: got %s/%s (%s), want %s/%s", tt.fstype, tt.source, info.Class, info.Provider, info.Reason, tt.class, tt.provider)
		}
	}
}

func TestClassFlags(t *testing.T) {
	if got := Classify(mountinfo.Mount{FSType: "fuse.rclone", Source: "r:"}); !got.FUSE {
		t.Error("fuse.rclone not flagged FUSE")
	}
	if got := Classify(mountinfo.Mount{FSType: "fuseblk", Source: "/dev/sda3"}); !got.FUSE || got.Class != ClassLocal {
		t.Errorf("fuseblk: %+v", got)
	}
	if got := Classify(mountinfo.Mount{FSType: "nfs4", Source: "s:/"}); got.FUSE {
		t.Error("nfs4 flagged FUSE")
	}
	for _, c := range Classes() {
		if p, err := ParseClass(string(c)); err != nil || p != c {
			t.Errorf("ParseClass(%q) = %q, %v", c, p, err)
		}
	}
	if _, err := ParseClass("usb"); err == nil || !strings.Contains(err.Error(), "removable") {
		t.Errorf("ParseClass(usb) error %v should list the valid classes", err)
	}
	// The policy language's strings, spelled out: renaming a constant
	// breaks policies.
	want := []string{"local", "network", "cloud", "shared-folder", "removable", "pseudo", "overlay"}
	for i, c := range Classes() {
		if string(c) != want[i] {
			t.Errorf("class %d is %q, want %q", i, c, want[i])
		}
	}
}

func TestRemovable(t *testing.T) {
	root := sysfsFixture(t)
	tests := []struct {
		major, minor uint32
		removable    bool
		provider     Provider
		mention      string
	}{
		{8, 17, true, ProviderUSB, "usb2"},
		{11, 0, true, ProviderRemovableDevice, "removable=1"},
		{179, 1, true, ProviderSDCard, "SD card"},
		{253, 3, true, ProviderUSB, "stacked on block device sdc1"},
		{8, 1, false, "", ""},
		{0, 45, false, "", ""},
	}
	for _, tt := range tests {
		ok, p, why, err := Removable(root, tt.major, tt.minor)
		if err != nil || ok != tt.removable || p != tt.provider || !strings.Contains(why, tt.mention) {
			t.Errorf("Removable(%d:%d) = %v %q %q %v", tt.major, tt.minor, ok, p, why, err)
		}
	}
	// A device sysfs does not know is an error, and ClassifyAt says it
	// could not check.
	if _, _, _, err := Removable(root, 8, 99); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown device: %v", err)
	}
	if info := ClassifyAt(root, mountinfo.Mount{Major: 8, Minor: 1, FSType: "ext4", Source: "/dev/sda1"}); info.Class != ClassLocal || !strings.Contains(info.Reason, "8:1 is not removable") {
		t.Errorf("internal disk: %+v", info)
	}
	info := ClassifyAt(t.TempDir(), mountinfo.Mount{Major: 8, Minor: 33, FSType: "vfat", Source: "/dev/sdc1"})
	if info.Class != ClassLocal || !strings.Contains(info.Reason, "not checked") {
		t.Errorf("no sysfs: %+v", info)
	}
}

// A snapshot classified once, looked up many times.
func TestMountsLookup(t *testing.T) {
	root := sysfsFixture(t)
	in := `1 0 8:1 / / rw - ext4 /dev/sda1 rw
2 1 0:21 / /proc rw - proc proc rw
3 1 8:17 / /media/alice/KINGSTON rw - vfat /dev/sdb1 rw
4 1 0:40 / /mnt/efs rw - nfs4 127.0.0.1:/ rw,vers=4.1,port=20049,addr=127.0.0.1
5 1 0:41 / /mnt/efs/archive rw - fuse.rclone onedrive: rw
6 1 0:42 / /mnt/efs rw - nfs4 nas:/export rw,vers=4.2
`
	ms, err := mountinfo.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	s := NewMounts(root, ms)
	tests := []struct {
		path       string
		mountPoint string
		class      Class
	}{
		{"/etc/passwd", "/", ClassLocal},
		{"/proc/self/status", "/proc", ClassPseudo},
		{"/media/alice/KINGSTON/report.docx", "/media/alice/KINGSTON", ClassRemovable},
		{"/media/alice/KINGSTONE", "/", ClassLocal},
		// The NFS mount over /mnt/efs hides both the EFS mount and the
		// rclone mount beneath it.
		{"/mnt/efs/archive/a", "/mnt/efs", ClassNetwork},
	}
	for _, tt := range tests {
		m, info := s.Lookup(tt.path)
		if m.MountPoint != tt.mountPoint || info.Class != tt.class {
			t.Errorf("Lookup(%q) = %s %s, want %s %s", tt.path, m.MountPoint, info.Class, tt.mountPoint, tt.class)
		}
		if i2, ok := s.Info(tt.path); !ok || i2 != info {
			t.Errorf("Info(%q) disagrees with Lookup", tt.path)
		}
	}
	if m, info := s.Lookup("relative/path"); info.Class != "" || m.MountPoint != "" {
		t.Errorf("relative path found %s %s", m.MountPoint, info.Class)
	}
	if s.Len() != 6 || s.Table().Len() != 6 || s.At(3).Provider != ProviderAWSEFS {
		t.Errorf("Len %d, At(3) %+v", s.Len(), s.At(3))
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, info := s.Lookup("/media/alice/KINGSTON/dir/report.docx"); info.Class != ClassRemovable {
			t.Fatal("lost")
		}
	})
	if allocs != 0 {
		t.Errorf("Mounts.Lookup allocates %v times per call", allocs)
	}
}

func TestLoadMountsFixture(t *testing.T) {
	root := sysfsFixture(t)
	dir := filepath.Join(root, "proc", "self")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := "1 0 8:1 / / rw - ext4 /dev/sda1 rw\ntruncated line\n3 1 8:17 / /usb rw - vfat /dev/sdb1 rw\n"
	if err := os.WriteFile(filepath.Join(dir, "mountinfo"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadMounts(root, 0)
	if s == nil || !errors.Is(err, mountinfo.ErrMalformed) {
		t.Fatalf("LoadMounts = %v, %v; want a table and ErrMalformed", s, err)
	}
	if _, info := s.Lookup("/usb/x"); info.Class != ClassRemovable {
		t.Errorf("/usb/x: %+v", info)
	}
	if s, err := LoadMounts(t.TempDir(), 0); s != nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing mountinfo: %v, %v", s, err)
	}
}

// This machine's own table: / is found and /proc is pseudo.
func TestLoadMountsLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	s, err := LoadMounts("/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m, info := s.Lookup("/"); m.MountPoint != "/" || info.Class == "" {
		t.Errorf("/: %+v %+v", m, info)
	}
	if m, info := s.Lookup("/proc/self/status"); m.FSType != "proc" || info.Class != ClassPseudo {
		t.Errorf("/proc: %+v %+v", m, info)
	}
}

func BenchmarkMountsLookup(b *testing.B) {
	cases := loadCorpus(b)
	var lines []string
	for _, c := range cases {
		lines = append(lines, c.line)
	}
	ms, _ := mountinfo.Parse(strings.NewReader(strings.Join(lines, "\n")))
	s := NewMounts(b.TempDir(), ms)
	paths := []string{"/mnt/efs/a/b/c.txt", "/home/me/OneDrive/Documents/x.docx", "/usr/lib/x", "/proc/1/status"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Lookup(paths[i&3])
		i++
	}
}

func BenchmarkClassifyCorpus(b *testing.B) {
	cases := loadCorpus(b)
	var ms []mountinfo.Mount
	for _, c := range cases {
		m, _ := mountinfo.Parse(strings.NewReader(c.line))
		ms = append(ms, m...)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range ms {
			Classify(ms[i])
		}
	}
}
