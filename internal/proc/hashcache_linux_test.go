package proc

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// nobody is the unprivileged user the tests hand files to.
const nobody = 65534

// copyFileTo copies src to dst with mode and owner.
func copyFileTo(t testing.TB, src, dst string, mode os.FileMode, uid int) []byte {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, uid, uid); err != nil {
		t.Fatal(err)
	}
	return b
}

// runBlocked starts exe reading from a pipe, so that it waits there, and
// looks it up once it runs exe. It is killed by PID and reaped when the
// test ends, or by the returned stop.
func runBlocked(t *testing.T, r *Resolver, exe string) (*Process, func()) {
	t.Helper()
	cmd := exec.Command(exe)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			syscall.Kill(pid, syscall.SIGKILL)
			in.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	waitExe(t, int32(pid), exe)
	p, err := r.Lookup(int32(pid), -1)
	if err != nil || p.Exe != exe {
		t.Fatalf("lookup %s: %+v %v", exe, p, err)
	}
	return p, stop
}

// TestHashCacheRehashesFilesAUserCanChange (issue #17, case 11): a copy of
// head on a tmpfs, owned by an unprivileged user, is hashed for one run;
// that user then changes it through a shared writable mapping, which on
// tmpfs leaves the change time, the size, and so the ExeID, as they were.
// The next run of it must be hashed anew, and must not get the sum of the
// file it was before. A root-owned copy on the same tmpfs is still cached.
func TestHashCacheRehashesFilesAUserCanChange(t *testing.T) {
	testutil.RequireRoot(t)
	fs := testutil.MountTmpfs(t)
	testutil.OpenToAll(t, filepath.Dir(fs))
	head := filepath.Join(fs, "head")
	orig := copyFileTo(t, lookPath(t, "head"), head, 0o755, nobody)
	r := NewResolver("/", Options{})

	p1, stop := runBlocked(t, r, head)
	sum, err := r.SHA256(p1)
	if err != nil || sum != sha256.Sum256(orig) {
		t.Fatalf("first run: %x %v, want the sum of head", sum, err)
	}
	stop()

	testutil.WriteShared(t, head, testutil.ELFUnusedByte(t, head), nobody, nobody)
	changed, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(changed) == sha256.Sum256(orig) {
		t.Fatal("the helper did not change the file")
	}

	p2, _ := runBlocked(t, r, head)
	if p2.ExeID != p1.ExeID {
		t.Logf("the kernel gave the changed file a new identity (%+v, was %+v): the cache was not at risk here", p2.ExeID, p1.ExeID)
	}
	for i := range 2 {
		sum, err = r.SHA256(p2)
		if err != nil || sum != sha256.Sum256(changed) {
			t.Fatalf("run after the change, call %d: %x %v; want the changed file's sum %x (head's is %x)",
				i, sum, err, sha256.Sum256(changed), sha256.Sum256(orig))
		}
	}
	if s := r.Stats(); s.HashHits != 0 || s.Hashes != 0 || s.HashReads != 3 {
		t.Errorf("a file its user can change was cached: %+v", s)
	}

	// The same program owned by root, writable by root alone: cached.
	rootHead := filepath.Join(fs, "root-head")
	copyFileTo(t, head, rootHead, 0o755, 0)
	p3, _ := runBlocked(t, r, rootHead)
	for range 2 {
		if sum, err := r.SHA256(p3); err != nil || sum != sha256.Sum256(changed) {
			t.Fatalf("root's copy: %x %v", sum, err)
		}
	}
	if s := r.Stats(); s.HashHits != 1 || s.Hashes != 1 {
		t.Errorf("root's file was not cached: %+v", s)
	}

	// Root's, but group-writable: anyone in the group could change it.
	if err := os.Chmod(rootHead, 0o775); err != nil {
		t.Fatal(err)
	}
	p4, _ := runBlocked(t, r, rootHead)
	before := r.Stats()
	for range 2 {
		if _, err := r.SHA256(p4); err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.HashReads-before.HashReads != 2 || s.HashHits != before.HashHits {
		t.Errorf("a group-writable file was cached: before %+v after %+v", before, s)
	}
}

// BenchmarkSHA256Uncached is what hashing at each decision costs for an
// executable whose content a user could change (owned by nobody), against
// a cached hit for the same file owned by root, for a copy of `sleep` and
// for copies padded with zeros to 1 and 16 MiB (an ELF file runs with
// bytes after its end). Needs root (chown).
//
// Run: go test -run XXX -bench SHA256Uncached -benchmem ./internal/proc
func BenchmarkSHA256Uncached(b *testing.B) {
	testutil.RequireRoot(b)
	for _, size := range []int64{0, 1 << 20, 16 << 20} {
		for _, owner := range []int{0, nobody} {
			name := fmt.Sprintf("size=%s/owner=%s", map[int64]string{0: "sleep", 1 << 20: "1MiB", 16 << 20: "16MiB"}[size], map[int]string{0: "root-cached", nobody: "nobody-rehashed"}[owner])
			b.Run(name, func(b *testing.B) {
				sleep, err := exec.LookPath("sleep")
				if err != nil {
					b.Fatal(err)
				}
				exe := filepath.Join(b.TempDir(), "sleep")
				copyFileTo(b, sleep, exe, 0o755, owner)
				if size > 0 {
					if err := os.Truncate(exe, size); err != nil {
						b.Fatal(err)
					}
				}
				c := start(b, nil, exe, "30")
				r := NewResolver("/", Options{})
				var p *Process
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					if p, err = r.Lookup(c.pid, c.pidfd); err == nil && p.Exe == exe {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("lookup: %+v %v", p, err)
					}
					r.Forget(c.pid)
				}
				if _, err := r.SHA256(p); err != nil {
					b.Fatal(err)
				}
				if owner != 0 {
					b.SetBytes(p.ExeID.Size) // each call reads the file
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := r.SHA256(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
