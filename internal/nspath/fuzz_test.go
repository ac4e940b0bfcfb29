package nspath

import (
	"path"
	"testing"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// FuzzTranslate feeds arbitrary paths and devices through the fixture
// tables in both directions. An answer must be an absolute, clean path on
// a visible mount of the process's table; nothing may panic.
func FuzzTranslate(f *testing.F) {
	type pair struct{ host, proc *mountinfo.Table }
	var pairs []pair
	for _, name := range []string{"docker", "kubernetes", "lab"} {
		h, p := mountinfo.NewTable(loadFixture(f, name, "host")), mountinfo.NewTable(loadFixture(f, name, "proc"))
		pairs = append(pairs, pair{h, p}, pair{p, h})
	}
	f.Add(uint8(0), dockerMerged+"/etc/passwd", uint32(0), uint32(115))
	f.Add(uint8(2), podDir+"/volumes/kubernetes.io~secret/db-creds/password", uint32(0), uint32(312))
	f.Add(uint8(4), "/srv/lab/vol/sub/../x//f", uint32(0), uint32(50))
	f.Add(uint8(5), "/etc/secret.txt", uint32(0), uint32(50))
	f.Add(uint8(1), "/", uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, which uint8, p string, major, minor uint32) {
		pr := pairs[int(which)%len(pairs)]
		got, ok := TranslateTables(pr.host, pr.proc, p, major, minor)
		if !ok {
			return
		}
		if got == "" || got[0] != '/' || path.Clean(got) != got {
			t.Fatalf("Translate(%q) = %q: not absolute and clean", p, got)
		}
		i := pr.proc.LookupIndex(got)
		if i < 0 || pr.proc.Hidden(i) {
			t.Fatalf("Translate(%q) = %q: no visible mount holds it", p, got)
		}
	})
}
