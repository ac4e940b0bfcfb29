package mountinfo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func parseOne(t *testing.T, line string) Mount {
	t.Helper()
	ms, err := Parse(strings.NewReader(line + "\n"))
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	if len(ms) != 1 {
		t.Fatalf("Parse(%q) = %d mounts, want 1", line, len(ms))
	}
	return ms[0]
}

// The example line of proc(5), every field checked.
func TestParseProc5Example(t *testing.T) {
	f, err := os.Open("testdata/proc5-example.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{{
		ID: 36, ParentID: 35, Major: 98, Minor: 0,
		Root: "/mnt1", MountPoint: "/mnt2", Options: "rw,noatime",
		Optional: []string{"master:1"}, Master: 1,
		FSType: "ext3", Source: "/dev/root", SuperOptions: "rw,errors=continue",
	}}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("got  %+v\nwant %+v", ms, want)
	}
	if !ms[0].BindSubtree() {
		t.Error("root /mnt1 should be reported as a bind of a subtree")
	}
	if v, ok := ms[0].SuperOption("errors"); !ok || v != "continue" {
		t.Errorf(`SuperOption("errors") = %q, %v`, v, ok)
	}
	if !ms[0].Option("noatime") || ms[0].Option("atime") || ms[0].ReadOnly() {
		t.Error("per-mount options misread")
	}
}

func TestParseEscapes(t *testing.T) {
	tests := []struct {
		name                     string
		line                     string
		root, mountPoint, source string
	}{
		{"space", `40 22 0:40 / /home/p/My\040Share rw - cifs //nas/My\040Docs rw`, "/", "/home/p/My Share", "//nas/My Docs"},
		{"tab", `41 22 0:41 / /mnt/tab\011name rw - tmpfs none rw`, "/", "/mnt/tab\tname", "none"},
		{"newline", `42 22 0:42 /a\012b /mnt/nl\012x rw - tmpfs a\012b rw`, "/a\nb", "/mnt/nl\nx", "a\nb"},
		{"backslash", `43 22 0:43 / /mnt/back\134slash rw - drvfs C:\134 rw`, "/", `/mnt/back\slash`, `C:\`},
		{"every escape", `44 22 0:44 /r\040\011\012\134 /m\040\011\012\134 rw - tmpfs s\040\011\012\134 rw`, "/r \t\n\\", "/m \t\n\\", "s \t\n\\"},
		{"not an escape is kept", `45 22 0:45 / /mnt/a\9b\400\04 rw - tmpfs x\ rw`, "/", `/mnt/a\9b\400\04`, `x\`},
		{"utf-8 untouched", `46 22 0:46 / /mnt/données rw - tmpfs tmpfs rw`, "/", "/mnt/données", "tmpfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := parseOne(t, tt.line)
			if m.Root != tt.root || m.MountPoint != tt.mountPoint || m.Source != tt.source {
				t.Errorf("root %q mount point %q source %q; want %q %q %q",
					m.Root, m.MountPoint, m.Source, tt.root, tt.mountPoint, tt.source)
			}
		})
	}
}

func TestParseOptionalFields(t *testing.T) {
	tests := []struct {
		name                 string
		opt                  string
		shared, master, from int
		unbindable           bool
		optional             []string
	}{
		{"none", "", 0, 0, 0, false, nil},
		{"shared", "shared:1", 1, 0, 0, false, []string{"shared:1"}},
		{"shared and master", "shared:5 master:12", 5, 12, 0, false, []string{"shared:5", "master:12"}},
		{"propagate_from", "master:3 propagate_from:2", 0, 3, 2, false, []string{"master:3", "propagate_from:2"}},
		{"unbindable", "unbindable", 0, 0, 0, true, []string{"unbindable"}},
		{"unknown tag kept, ignored", "shared:4 future:9 novalue", 4, 0, 0, false, []string{"shared:4", "future:9", "novalue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "50 1 8:1 / /x rw,relatime " + tt.opt + " - ext4 /dev/sda1 rw"
			if tt.opt == "" {
				line = "50 1 8:1 / /x rw,relatime - ext4 /dev/sda1 rw"
			}
			m := parseOne(t, line)
			if m.Shared != tt.shared || m.Master != tt.master || m.PropagateFrom != tt.from || m.Unbindable != tt.unbindable {
				t.Errorf("shared %d master %d from %d unbindable %v", m.Shared, m.Master, m.PropagateFrom, m.Unbindable)
			}
			if !reflect.DeepEqual(m.Optional, tt.optional) {
				t.Errorf("Optional = %q, want %q", m.Optional, tt.optional)
			}
			if m.FSType != "ext4" || m.Source != "/dev/sda1" {
				t.Errorf("fields after the separator misread: %+v", m)
			}
		})
	}
}

func TestParseFieldDetails(t *testing.T) {
	// An empty source is written as nothing between two spaces.
	m := parseOne(t, "60 1 0:50 / /empty rw - tmpfs  rw,size=4k")
	if m.Source != "" || m.FSType != "tmpfs" || m.SuperOptions != "rw,size=4k" {
		t.Errorf("empty source: %+v", m)
	}
	// Subtypes.
	m = parseOne(t, "61 1 0:51 / /mnt/ssh rw,nosuid,nodev - fuse.sshfs user@host:/srv rw,user_id=0,group_id=0")
	if m.BaseType() != "fuse" || m.Subtype() != "sshfs" {
		t.Errorf("BaseType %q Subtype %q", m.BaseType(), m.Subtype())
	}
	if m.Subtype() == "" && m.BaseType() != m.FSType {
		t.Error("no-subtype case")
	}
	if v, ok := m.SuperOption("user_id"); !ok || v != "0" {
		t.Errorf("SuperOption(user_id) = %q %v", v, ok)
	}
	if _, ok := m.SuperOption("user"); ok {
		t.Error("SuperOption must match whole keys, not prefixes")
	}
	// nsfs root, large device numbers, CRLF line ending.
	ms, err := Parse(strings.NewReader("535 516 0:4 mnt:[4026532862] /run/snapd/ns/lxd.mnt rw - nsfs nsfs rw\r\n" +
		"70 1 4095:1048575 / /big ro - ext4 /dev/x ro\n"))
	if err != nil || len(ms) != 2 {
		t.Fatalf("got %d mounts, %v", len(ms), err)
	}
	if ms[0].Root != "mnt:[4026532862]" || ms[0].SuperOptions != "rw" {
		t.Errorf("nsfs line: %+v", ms[0])
	}
	if ms[1].Major != 4095 || ms[1].Minor != 1048575 || !ms[1].ReadOnly() {
		t.Errorf("device numbers: %+v", ms[1])
	}
}

// Garbage never panics: it is skipped, reported with its line number, and
// the good lines around it survive.
func TestParseMalformed(t *testing.T) {
	good := "22 1 8:1 / / rw - ext4 /dev/sda1 rw"
	tests := []struct {
		name, line, reason string
	}{
		{"too few fields", "22 1 8:1 / /", "fields, want at least 10"},
		{"truncated after separator", "22 1 8:1 / /x rw - ext4 /dev/sda1", "fields, want at least 10"},
		{"truncated with optional fields", "22 1 8:1 / /x rw shared:1 master:2 - ext4 /dev/sda1", "want 3"},
		{"no separator", "22 1 8:1 / /x rw shared:1 ext4 /dev/sda1 rw x", "no \"-\" separator"},
		{"too many after separator", "22 1 8:1 / /x rw - ext4 /dev/sda1 rw extra", "want 3"},
		{"bad id", "x 1 8:1 / /x rw - ext4 /dev/sda1 rw", "bad mount ID"},
		{"negative id", "-5 1 8:1 / /x rw - ext4 /dev/sda1 rw", "bad mount ID"},
		{"id overflow", "99999999999999999999 1 8:1 / /x rw - ext4 /dev/sda1 rw", "bad mount ID"},
		{"bad parent", "22 p 8:1 / /x rw - ext4 /dev/sda1 rw", "bad parent ID"},
		{"no colon in dev", "22 1 81 / /x rw - ext4 /dev/sda1 rw", "bad major:minor"},
		{"bad major", "22 1 a:1 / /x rw - ext4 /dev/sda1 rw", "bad major"},
		{"bad minor", "22 1 8: / /x rw - ext4 /dev/sda1 rw", "bad minor"},
		{"relative mount point", "22 1 8:1 / x rw - ext4 /dev/sda1 rw", "not absolute"},
		{"empty root", "22 1 8:1  /x rw - ext4 /dev/sda1 rw", "empty root"},
		{"empty options", "22 1 8:1 / /x  - ext4 /dev/sda1 rw", "empty mount options"},
		{"empty fstype", "22 1 8:1 / /x rw -  /dev/sda1 rw", "empty filesystem type"},
		{"bad shared", "22 1 8:1 / /x rw shared:x - ext4 /dev/sda1 rw", "bad optional field"},
		{"shared without value", "22 1 8:1 / /x rw shared - ext4 /dev/sda1 rw", "without a value"},
		{"empty optional", "22 1 8:1 / /x rw  shared:1 - ext4 /dev/sda1 rw", "empty optional field"},
		{"binary", "\x00\x01\xff\xfe 1 8:1 / /x rw - ext4 /dev/sda1 rw", "bad mount ID"},
		{"only dashes", "- - - - - - - - - -", "bad mount ID"},
		{"tabs instead of spaces", "22\t1\t8:1\t/\t/x\trw\t-\text4\t/dev/sda1\trw", "fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good + "\n" + tt.line + "\n" + strings.Replace(good, "/ /", "/ /after", 1) + "\n"
			ms, err := Parse(strings.NewReader(in))
			if len(ms) != 2 || ms[0].MountPoint != "/" || ms[1].MountPoint != "/after" {
				t.Fatalf("good lines not kept: %+v", ms)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want *ParseError matching ErrMalformed", err)
			}
			if pe.Skipped != 1 || len(pe.Lines) != 1 || pe.Lines[0].Line != 2 {
				t.Fatalf("ParseError = %+v, want line 2 skipped", pe)
			}
			if !strings.Contains(pe.Lines[0].Reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", pe.Lines[0].Reason, tt.reason)
			}
		})
	}
}

func TestParseEmptyAndBlankInput(t *testing.T) {
	for _, in := range []string{"", "\n", "\n\n\r\n"} {
		ms, err := Parse(strings.NewReader(in))
		if err != nil || len(ms) != 0 {
			t.Errorf("Parse(%q) = %v, %v", in, ms, err)
		}
	}
	// No trailing newline on the last line.
	ms, err := Parse(strings.NewReader("22 1 8:1 / / rw - ext4 /dev/sda1 rw"))
	if err != nil || len(ms) != 1 {
		t.Errorf("last line without newline: %v, %v", ms, err)
	}
}

func TestParseLongLines(t *testing.T) {
	// Overlay lowerdir lists make real lines tens of kilobytes long.
	lower := strings.Repeat("/var/lib/docker/overlay2/l/ABCDEFGHIJKLMNOPQRSTUVWXYZ:", 2000)
	long := "1 0 0:1 / / rw - overlay overlay rw,lowerdir=" + lower
	absurd := "2 1 0:2 / /x rw - tmpfs tmpfs rw," + strings.Repeat("a", 3<<20)
	in := long + "\n" + absurd + "\n3 1 0:3 / /y rw - tmpfs tmpfs rw\n"
	ms, err := Parse(strings.NewReader(in))
	if len(ms) != 2 || ms[0].FSType != "overlay" || ms[1].MountPoint != "/y" {
		t.Fatalf("got %d mounts", len(ms))
	}
	if v, _ := ms[0].SuperOption("lowerdir"); v != lower {
		t.Errorf("long lowerdir cut to %d bytes", len(v))
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Lines[0].Line != 2 || !strings.Contains(pe.Lines[0].Reason, "longer than") {
		t.Fatalf("err = %v", err)
	}
	if len(pe.Lines[0].Text) > 120 {
		t.Errorf("error text not bounded: %d bytes", len(pe.Lines[0].Text))
	}
}

func TestParseErrorIsBounded(t *testing.T) {
	in := strings.Repeat("garbage\n", 1000) + "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
	ms, err := Parse(strings.NewReader(in))
	var pe *ParseError
	if len(ms) != 1 || !errors.As(err, &pe) {
		t.Fatalf("%d mounts, %v", len(ms), err)
	}
	if pe.Skipped != 1000 || len(pe.Lines) != maxLineErrors {
		t.Errorf("Skipped %d, kept %d", pe.Skipped, len(pe.Lines))
	}
	if !strings.Contains(err.Error(), "1000 malformed lines") {
		t.Errorf("message %q", err)
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	ms, err := Parse(&failingReader{r: strings.NewReader("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), err: boom})
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want wrapped boom", err)
	}
	if len(ms) != 1 {
		t.Errorf("mounts read before the error lost: %v", ms)
	}
}

func TestReadFromRoot(t *testing.T) {
	root := t.TempDir()
	write := func(pid, content string) {
		dir := filepath.Join(root, "proc", pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "mountinfo"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("self", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
	write("42", "30 1 0:40 / / rw - overlay overlay rw\nbad line\n")

	ms, err := Read(root, 0)
	if err != nil || len(ms) != 1 || ms[0].FSType != "ext4" {
		t.Fatalf("Read(root, 0) = %v, %v", ms, err)
	}
	ms, err = Read(root, 42)
	if len(ms) != 1 || ms[0].FSType != "overlay" {
		t.Fatalf("Read(root, 42) = %v", ms)
	}
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), filepath.Join(root, "proc/42/mountinfo")) {
		t.Errorf("partial read error should name the file and match ErrMalformed: %v", err)
	}
	if _, err := Read(root, 7); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing pid: %v", err)
	}
	if _, err := Read(root, -1); err == nil {
		t.Error("negative pid accepted")
	}
}

// The machine's own table: / is found, /proc is procfs.
func TestReadLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skipf("no /proc/self/mountinfo here: %v", err)
	}
	ms, err := Read("/", 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	tab := NewTable(ms)
	if m := tab.Lookup("/"); m == nil || m.MountPoint != "/" {
		t.Fatalf("Lookup(/) = %+v", m)
	}
	if m := tab.Lookup("/proc/self/status"); m == nil || m.FSType != "proc" {
		t.Fatalf("Lookup(/proc/self/status) = %+v", m)
	}
}

func TestContainerNamespace(t *testing.T) {
	f, err := os.Open("testdata/docker-container.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(ms)
	tests := []struct {
		path, mountPoint, fstype, root string
	}{
		{"/usr/bin/env", "/", "overlay", "/"},
		{"/etc/hosts", "/etc/hosts", "ext4", "/var/lib/docker/containers/4c5e1a7f/hosts"},
		{"/etc/hostname", "/etc/hostname", "ext4", "/var/lib/docker/containers/4c5e1a7f/hostname"},
		{"/etc/passwd", "/", "overlay", "/"},
		{"/work/src/main.go", "/work", "ext4", "/home/dev/project"},
		{"/proc/sys/kernel/hostname", "/proc/sys", "proc", "/sys"},
		{"/proc/1/status", "/proc", "proc", "/"},
		{"/proc/kcore", "/proc/kcore", "tmpfs", "/null"},
		{"/dev/shm/x", "/dev/shm", "tmpfs", "/"},
		{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup", "cgroup2", "/"},
	}
	for _, tt := range tests {
		m := tab.Lookup(tt.path)
		if m == nil || m.MountPoint != tt.mountPoint || m.FSType != tt.fstype || m.Root != tt.root {
			t.Errorf("Lookup(%q) = %+v, want %s %s root %s", tt.path, m, tt.mountPoint, tt.fstype, tt.root)
			continue
		}
		if m.BindSubtree() != (tt.root != "/") {
			t.Errorf("%s: BindSubtree = %v", tt.path, m.BindSubtree())
		}
	}
	root := tab.Lookup("/")
	if v, _ := root.SuperOption("upperdir"); !strings.HasSuffix(v, "/diff") {
		t.Errorf("overlay upperdir = %q", v)
	}
}

func TestTableLookup(t *testing.T) {
	in := `22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 8:2 / /data rw - ext4 /dev/sdb1 rw
31 22 8:3 / /database rw - xfs /dev/sdc1 rw
32 30 0:40 / /data/nfs rw - nfs4 srv:/export rw
33 22 0:41 / /mnt/my\040share rw - cifs //nas/s rw
`
	ms, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(ms)
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/etc/passwd", "/"},
		{"/data", "/data"},
		{"/data/", "/data"},
		{"/data/x/y", "/data"},
		{"/database/x", "/database"},
		{"/datab", "/"},
		{"/data/nfs/file", "/data/nfs"},
		{"/data/nfsx", "/data"},
		{"/data//nfs/./a/../b", "/data/nfs"},
		{"/mnt/my share/doc.txt", "/mnt/my share"},
		{"/mnt/my", "/"},
		{"/../data/x", "/data"},
	}
	for _, tt := range tests {
		m := tab.Lookup(tt.path)
		if m == nil || m.MountPoint != tt.want {
			t.Errorf("Lookup(%q) = %v, want %q", tt.path, m, tt.want)
		}
	}
	for _, p := range []string{"", "data/x", "./data"} {
		if m := tab.Lookup(p); m != nil {
			t.Errorf("Lookup(%q) = %v, want nil for a relative path", p, m)
		}
	}
	if tab.Len() != 5 || tab.At(1).MountPoint != "/data" || len(tab.Mounts()) != 5 {
		t.Error("Len/At/Mounts disagree with the input")
	}
	// The table holds its own copy.
	ms[1].MountPoint = "/changed"
	if tab.Lookup("/data/x").MountPoint != "/data" {
		t.Error("table shares the caller's slice")
	}
	// An empty table answers nil.
	if NewTable(nil).Lookup("/x") != nil {
		t.Error("empty table answered")
	}
}

func TestTableOvermount(t *testing.T) {
	in := `22 1 8:1 / / rw - ext4 /dev/sda1 rw
40 22 0:40 / /stack rw - ext4 /dev/sdb1 rw
41 40 0:41 / /stack/inner rw - tmpfs inner rw
42 22 0:42 / /stack rw - tmpfs top rw
50 22 0:50 / /same rw - tmpfs first rw
51 50 0:51 / /same rw - tmpfs second rw
52 51 0:52 / /same rw - tmpfs third rw
`
	ms, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(ms)
	// The tmpfs mounted over /stack hides /stack and /stack/inner below it.
	if m := tab.Lookup("/stack/inner/f"); m == nil || m.Source != "top" {
		t.Errorf("Lookup(/stack/inner/f) = %+v, want the tmpfs on top of /stack", m)
	}
	if !tab.Hidden(1) || !tab.Hidden(2) || tab.Hidden(3) {
		t.Errorf("hidden = %v %v %v", tab.Hidden(1), tab.Hidden(2), tab.Hidden(3))
	}
	// Three mounts stacked on one point: the last is on top.
	if m := tab.Lookup("/same/f"); m == nil || m.Source != "third" {
		t.Errorf("Lookup(/same/f) = %+v, want third", m)
	}
}

// The root mount is not always listed first (this happens on the
// development VM): mounts whose ancestor comes later stay visible.
func TestTableRootListedLate(t *testing.T) {
	in := `22 27 0:21 / /proc rw - proc proc rw
24 27 0:6 / /dev rw - devtmpfs devtmpfs rw
26 24 0:24 / /dev/pts rw - devpts devpts rw
27 1 254:0 / / rw - ext4 /dev/vda rw
29 26 0:26 / /dev/pts rw - devpts devpts rw,mode=600
`
	ms, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable(ms)
	if m := tab.Lookup("/proc/1"); m == nil || m.FSType != "proc" {
		t.Errorf("Lookup(/proc/1) = %+v", m)
	}
	if m := tab.Lookup("/dev/null"); m == nil || m.FSType != "devtmpfs" {
		t.Errorf("Lookup(/dev/null) = %+v", m)
	}
	if m := tab.Lookup("/dev/pts/0"); m == nil || m.ID != 29 {
		t.Errorf("Lookup(/dev/pts/0) = %+v, want mount 29 on top", m)
	}
	if m := tab.Lookup("/etc"); m == nil || m.ID != 27 {
		t.Errorf("Lookup(/etc) = %+v", m)
	}
}

// A garbage table (parent cycles, self-parents, duplicate IDs) still
// builds and answers.
func TestTableGarbageParents(t *testing.T) {
	ms := []Mount{
		{ID: 1, ParentID: 2, MountPoint: "/", FSType: "a"},
		{ID: 2, ParentID: 1, MountPoint: "/x", FSType: "b"},
		{ID: 2, ParentID: 2, MountPoint: "/x/y", FSType: "c"},
		{ID: 3, ParentID: 3, MountPoint: "/", FSType: "d"},
	}
	tab := NewTable(ms)
	if m := tab.Lookup("/x/y/z"); m == nil {
		t.Fatal("no answer")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab := NewTable(syntheticMounts(500))
	paths := []string{"/", "/srv/vol123/data/file.txt", "/home/user/docs/a/b/c/d.txt", "/proc/self/status"}
	for _, p := range paths {
		allocs := testing.AllocsPerRun(100, func() {
			if tab.Lookup(p) == nil {
				t.Fatal("no mount")
			}
		})
		if allocs != 0 {
			t.Errorf("Lookup(%q): %v allocs, want 0", p, allocs)
		}
	}
}

// syntheticMounts returns a plausible host table of n mounts: system
// mounts, volumes, container overlays and their binds.
func syntheticMounts(n int) []Mount {
	ms, _ := Parse(strings.NewReader(syntheticMountinfo(n)))
	return ms
}

func syntheticMountinfo(n int) string {
	var b strings.Builder
	b.WriteString("1 0 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n")
	b.WriteString("2 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw\n")
	b.WriteString("3 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:3 - sysfs sysfs rw\n")
	b.WriteString("4 1 0:5 / /dev rw,nosuid,relatime shared:4 - devtmpfs udev rw,size=8085000k,nr_inodes=2021250,mode=755\n")
	b.WriteString("5 1 259:3 / /home rw,relatime shared:5 - ext4 /dev/nvme0n1p3 rw\n")
	for i := 6; i <= n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "%d 1 0:%d / /srv/vol%d rw,relatime shared:%d - nfs4 fs-%08x.efs.us-east-1.amazonaws.com:/ rw,vers=4.1,rsize=1048576,wsize=1048576,namlen=255,hard,noresvport,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.5,local_lock=none,addr=10.0.1.9\n", i, 100+i, i, i, i)
		case 1:
			fmt.Fprintf(&b, "%d 1 0:%d / /var/lib/docker/overlay2/%064x/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A%d:/var/lib/docker/overlay2/l/B%d,upperdir=/var/lib/docker/overlay2/%064x/diff,workdir=/var/lib/docker/overlay2/%064x/work\n", i, 100+i, i, i, i, i, i)
		case 2:
			fmt.Fprintf(&b, "%d 1 0:%d / /run/user/%d rw,nosuid,nodev,relatime shared:%d - tmpfs tmpfs rw,size=1617000k,nr_inodes=404250,mode=700,uid=%d,gid=%d\n", i, 100+i, 1000+i, i, 1000+i, 1000+i)
		case 3:
			fmt.Fprintf(&b, "%d 5 259:3 /user%d/project /var/lib/kubelet/pods/%032x/volumes/kubernetes.io~empty-dir/data rw,relatime shared:5 - ext4 /dev/nvme0n1p3 rw\n", i, i, i)
		}
	}
	return b.String()
}

func BenchmarkParse500(b *testing.B) {
	in := syntheticMountinfo(500)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		ms, err := Parse(strings.NewReader(in))
		if err != nil || len(ms) != 500 {
			b.Fatalf("%d mounts, %v", len(ms), err)
		}
	}
}

func BenchmarkTableLookup(b *testing.B) {
	tab := NewTable(syntheticMounts(500))
	paths := []string{
		"/home/user/docs/report.docx",
		"/srv/vol124/data/a/b/file.bin",
		"/var/lib/docker/overlay2/" + fmt.Sprintf("%064x", 9) + "/merged/usr/bin/env",
		"/usr/share/doc/x",
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if tab.Lookup(paths[i&3]) == nil {
			b.Fatal("no mount")
		}
		i++
	}
}

func BenchmarkNewTable500(b *testing.B) {
	ms := syntheticMounts(500)
	b.ReportAllocs()
	for b.Loop() {
		NewTable(ms)
	}
}

func TestPath(t *testing.T) {
	for _, tt := range []struct {
		root string
		pid  int
		want string
	}{
		{"/", 0, "/proc/self/mountinfo"},
		{"", 0, "/proc/self/mountinfo"},
		{"/host", 1, "/host/proc/1/mountinfo"},
		{"/tmp/fixture/", 42, "/tmp/fixture/proc/42/mountinfo"},
	} {
		if got := Path(tt.root, tt.pid); got != tt.want {
			t.Errorf("Path(%q, %d) = %q, want %q", tt.root, tt.pid, got, tt.want)
		}
	}
}
