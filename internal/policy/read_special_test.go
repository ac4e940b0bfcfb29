//go:build unix

package policy

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readPathsBounded runs ReadPaths and fails t if it has not returned within
// a minute: the bound only keeps a loader that blocks from hanging the
// test. release is called before giving up, to let a blocked reader go.
func readPathsBounded(t *testing.T, paths []string, release func()) ([]Source, error) {
	t.Helper()
	type result struct {
		srcs []Source
		err  error
	}
	done := make(chan result, 1)
	go func() {
		srcs, err := ReadPaths(paths)
		done <- result{srcs, err}
	}()
	select {
	case r := <-done:
		return r.srcs, r.err
	case <-time.After(time.Minute):
		release()
		<-done
		t.Fatalf("ReadPaths(%v) blocked for a minute", paths)
		return nil, nil
	}
}

// releaseFIFO lets a reader blocked opening the named pipe at path go: an
// open for reading and writing never blocks on Linux, and closing it
// gives the reader end of file.
func releaseFIFO(path string) func() {
	return func() {
		if f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}
}

// TestReadPathsRefusesFilesThatAreNotRegular puts a named pipe, a socket
// or a device among the policy files: reading returns at once with an
// error naming it, instead of blocking on the pipe until someone writes.
func TestReadPathsRefusesFilesThatAreNotRegular(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, dir string) (entry string, release func())
		what string
	}{
		{"fifo", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "pipe.yaml")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p, releaseFIFO(p)
		}, "named pipe"},
		{"symlink to a fifo", func(t *testing.T, dir string) (string, func()) {
			target := filepath.Join(t.TempDir(), "pipe")
			if err := syscall.Mkfifo(target, 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "linked.yaml")
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			return p, releaseFIFO(target)
		}, "named pipe"},
		{"socket", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "sock.yaml")
			ln, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return p, func() {}
		}, "socket"},
		{"device", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "null.yaml")
			if err := os.Symlink("/dev/null", p); err != nil {
				t.Fatal(err)
			}
			return p, func() {}
		}, "character device"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "finance.yaml"), []byte(financeDoc), 0o644); err != nil {
				t.Fatal(err)
			}
			entry, release := c.make(t, dir)
			t.Cleanup(release)
			for _, paths := range [][]string{{dir}, {entry}} {
				srcs, err := readPathsBounded(t, paths, release)
				if !errors.Is(err, ErrNotRegular) {
					t.Fatalf("ReadPaths(%v): %d sources, error %v; want ErrNotRegular", paths, len(srcs), err)
				}
				if !strings.Contains(err.Error(), entry) || !strings.Contains(err.Error(), c.what) {
					t.Errorf("ReadPaths(%v): error %q does not name %s as a %s", paths, err, entry, c.what)
				}
			}
		})
	}
}

// TestReadPathsRefusesALargeFileWithoutReadingIt: a sparse file past the
// bound is refused by its size.
func TestReadPathsRefusesALargeFileWithoutReadingIt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		f.Close()
		t.Skipf("cannot make a sparse file: %v", err)
	}
	f.Close()
	_, err = readPathsBounded(t, []string{p}, func() {})
	if err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") || !strings.Contains(err.Error(), p) {
		t.Fatalf("ReadPaths of a 1 TiB file: %v", err)
	}
}

// TestReadPathsSkipsDanglingAndDirectoryEntries: a *.yaml directory or a
// dangling *.yaml symlink in a policy directory is still skipped.
func TestReadPathsSkipsDanglingAndDirectoryEntries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "finance.yaml"), []byte(financeDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "old.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/gone.yaml", filepath.Join(dir, "gone.yaml")); err != nil {
		t.Fatal(err)
	}
	srcs, err := ReadPaths([]string{dir})
	if err != nil || len(srcs) != 1 || srcs[0].Name != filepath.Join(dir, "finance.yaml") {
		t.Fatalf("ReadPaths: %v, %v", srcs, err)
	}
}
