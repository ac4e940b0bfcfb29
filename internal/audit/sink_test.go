package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func line(i int) []byte {
	r := sampleRecord()
	r.PID = int32(i)
	return AppendJSON(nil, &r)
}

func TestFileSinkCreatesPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "audit.log")
	s, err := NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | fs.ModeDir} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
	}
}

func TestFileSinkAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for i := range 2 {
		s, err := NewFileSink(path, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(line(i)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	if recs := parseLines(t, b); len(recs) != 2 {
		t.Fatalf("%d records after reopening", len(recs))
	}
}

// Rotation at the size limit keeps the newest records in path, path.1,
// ... path.N, each file within the limit and made of whole lines.
func TestFileSinkRotation(t *testing.T) {
	for _, backups := range []int{0, 1, 3} {
		t.Run(fmt.Sprint("backups=", backups), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			ln := len(line(0))
			max := int64(ln*5 + ln/2) // five whole lines fit
			s, err := NewFileSink(path, max, backups)
			if err != nil {
				t.Fatal(err)
			}
			const n = 53
			for i := 0; i < n; {
				// Batches of 1 to 3 lines, as the Writer sends them.
				var b []byte
				for k := 0; k < 1+i%3 && i < n; k++ {
					b = append(b, line(i)...)
					i++
				}
				if err := s.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			var all []Record
			for i := backups; i >= 0; i-- {
				p := path
				if i > 0 {
					p = fmt.Sprintf("%s.%d", path, i)
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("missing %s: %v", p, err)
				}
				if int64(len(b)) > max {
					t.Errorf("%s: %d bytes, limit %d", p, len(b), max)
				}
				if len(b) > 0 && b[len(b)-1] != '\n' {
					t.Errorf("%s does not end with a whole line", p)
				}
				all = append(all, parseLines(t, b)...)
			}
			if _, err := os.Stat(fmt.Sprintf("%s.%d", path, backups+1)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("backup %d kept: %v", backups+1, err)
			}
			// What is kept is the newest records, in order, without gaps.
			for i, r := range all {
				if want := int32(n - len(all) + i); r.PID != want {
					t.Fatalf("record %d has pid %d, want %d", i, r.PID, want)
				}
			}
			if min := 5 * backups; len(all) < min {
				t.Errorf("kept %d records, want at least %d", len(all), min)
			}
		})
	}
}

func TestFileSinkLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := NewFileSink(path, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := append(line(1), line(2)...)
	if err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if !bytes.Equal(old, line(1)) || !bytes.Equal(cur, line(2)) {
		t.Errorf("lines longer than the limit must each get a file:\n%s---\n%s", old, cur)
	}
}

// Reopen follows an external rotation: the old file is renamed away, and
// records after Reopen go to a new file at path.
func TestFileSinkReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(line(1))
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	s.Write(line(2)) // still the renamed file
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	s.Write(line(3))
	s.Close()
	old, _ := os.ReadFile(path + ".old")
	cur, _ := os.ReadFile(path)
	if len(parseLines(t, old)) != 2 || len(parseLines(t, cur)) != 1 {
		t.Errorf("old %q\nnew %q", old, cur)
	}
	if err := s.Write(line(4)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := s.Reopen(); !errors.Is(err, ErrClosed) {
		t.Errorf("reopen after close: %v", err)
	}
}

func TestStreamSink(t *testing.T) {
	var b bytes.Buffer
	w := New(Options{Limit: noLimit}, NewStreamSink(&b))
	r := sampleRecord()
	w.Write(&r)
	closeW(t, w)
	if b.String() != sampleLine {
		t.Errorf("stream got %q", b.String())
	}
}
