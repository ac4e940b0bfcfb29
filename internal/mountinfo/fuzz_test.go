package mountinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, every
// mount it returns must satisfy the invariants Table relies on, and a table
// built from them must answer for each mount point.
//
// Run: go test -run '^$' -fuzz FuzzParse ./internal/mountinfo
func FuzzParse(f *testing.F) {
	seeds := []string{
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
		`40 22 0:40 / /home/p/My\040Share rw shared:5 master:2 propagate_from:1 unbindable - cifs //nas/My\040Docs rw` + "\n",
		"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 0:40 / /data rw - tmpfs  rw\n",
		"garbage\n\x00\xff\n- - - - - - - - - -\n",
		"22 1 8:1 / /x rw - ext4 /dev/sda1\n",
		"1 0 0:1 / / rw - overlay overlay rw,lowerdir=/a:/b\r\n",
		`1 1 0:1 \134\040 /\0 rw x:y - a.b.c \999 rw` + "\n",
	}
	for _, name := range []string{"testdata/docker-container.mountinfo", "testdata/proc5-example.mountinfo"} {
		if b, err := os.ReadFile(name); err == nil {
			seeds = append(seeds, string(b))
		}
	}
	if b, err := os.ReadFile(filepath.Join("..", "storage", "testdata", "corpus.mountinfo")); err == nil {
		seeds = append(seeds, string(b))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, _ := Parse(strings.NewReader(string(data)))
		for _, m := range ms {
			if !strings.HasPrefix(m.MountPoint, "/") || m.FSType == "" || m.Root == "" || m.Options == "" {
				t.Fatalf("invariant broken: %+v", m)
			}
			_ = m.BindSubtree()
			_, _ = m.SuperOption("x")
		}
		tab := NewTable(ms)
		for i := range ms {
			if !strings.HasPrefix(ms[i].MountPoint, "/") {
				continue
			}
			if tab.Lookup(ms[i].MountPoint) == nil && !tab.Hidden(i) {
				// A visible mount point must at least find something
				// (itself or, after cleaning, a mount above it).
				t.Fatalf("no answer for visible mount point %q", ms[i].MountPoint)
			}
		}
	})
}
