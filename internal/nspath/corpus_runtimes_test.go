package nspath_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
	"github.com/drmfilter/drmfilter/internal/nspath"
)

// runtimeCase is one entry of testdata/runtimes/<runtime>/cases.json: a
// path as the node (host.mountinfo) names a file on device dev, and the
// path under which the container process (container.mountinfo) sees it,
// "" when it cannot. With reverse, the container path must also translate
// back to path.
type runtimeCase struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Dev     string `json:"dev"`
	Want    string `json:"want"`
	Reverse bool   `json:"reverse,omitempty"`
}

func parseRuntimeTable(t *testing.T, dir, file string) []mountinfo.Mount {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mountinfo.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s/%s: %v", dir, file, err)
	}
	if len(ms) < 5 {
		t.Fatalf("%s/%s: only %d mounts", dir, file, len(ms))
	}
	return ms
}

func parseDev(t *testing.T, s string) (uint32, uint32) {
	t.Helper()
	a, b, ok := strings.Cut(s, ":")
	maj, err1 := strconv.ParseUint(a, 10, 32)
	min, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad device %q", s)
	}
	return uint32(maj), uint32(min)
}

// TestRuntimeMountinfoCorpus walks testdata/runtimes: for each runtime a
// node's and a container process's mount tables (see testdata/README.md for
// where each comes from), and the paths that must translate between them.
func TestRuntimeMountinfoCorpus(t *testing.T) {
	dirs, err := filepath.Glob("testdata/runtimes/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 9 {
		t.Fatalf("only %d runtime mountinfo samples", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			host := parseRuntimeTable(t, dir, "host.mountinfo")
			proc := parseRuntimeTable(t, dir, "container.mountinfo")
			b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cases []runtimeCase
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&cases); err != nil {
				t.Fatalf("cases.json: %v", err)
			}
			visible, hidden := 0, 0
			for _, tc := range cases {
				t.Run(tc.Name, func(t *testing.T) {
					maj, min := parseDev(t, tc.Dev)
					got, ok := nspath.Translate(host, proc, tc.Path, maj, min)
					if tc.Want == "" {
						hidden++
						if ok {
							t.Fatalf("Translate(%q, %s) = %q, want not visible", tc.Path, tc.Dev, got)
						}
						return
					}
					visible++
					if !ok || got != tc.Want {
						t.Fatalf("Translate(%q, %s) = %q, %v; want %q", tc.Path, tc.Dev, got, ok, tc.Want)
					}
					// The tables built once answer as Translate does.
					if g2, ok2 := nspath.TranslateTables(mountinfo.NewTable(host), mountinfo.NewTable(proc), tc.Path, maj, min); g2 != got || ok2 != ok {
						t.Errorf("TranslateTables = %q, %v; Translate = %q, %v", g2, ok2, got, ok)
					}
					if tc.Reverse {
						back, ok := nspath.Translate(proc, host, tc.Want, maj, min)
						if !ok || back != tc.Path {
							t.Errorf("reverse Translate(%q, %s) = %q, %v; want %q", tc.Want, tc.Dev, back, ok, tc.Path)
						}
					}
				})
			}
			if visible == 0 || hidden == 0 {
				t.Errorf("cases.json has %d visible and %d hidden paths, want both kinds", visible, hidden)
			}
		})
	}
}
