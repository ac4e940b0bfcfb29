package testutil

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// sharedWriteC flips one byte of a file through a shared writable mapping,
// with the descriptor closed first: the mapping alone makes the change.
// The byte is read before it is written: on a file system without write
// notification for mappings (tmpfs: no page_mkwrite, no dirty accounting)
// the read fault maps the page writable, and the store then neither
// faults nor updates the file's times. A store that faulted would
// (fault_dirty_shared_page in mm/memory.c calls file_update_time).
const sharedWriteC = `#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE OFFSET\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDWR);
	if (fd < 0) { perror("open"); return 1; }
	struct stat st;
	if (fstat(fd, &st) < 0) { perror("fstat"); return 1; }
	long long off = atoll(argv[2]);
	if (off < 0 || off >= st.st_size) {
		fprintf(stderr, "offset %lld outside %lld bytes\n", off, (long long)st.st_size);
		return 1;
	}
	unsigned char *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); return 1; }
	close(fd);
	volatile unsigned char *v = p;
	unsigned char c = v[off];
	v[off] = c ^ 0xff;
	if (munmap(p, st.st_size) < 0) { perror("munmap"); return 1; }
	return 0;
}
`

// WriteShared flips the byte at off of the file at path through a shared
// writable mapping (mmap(2) MAP_SHARED, a load, then a store: no
// write(2)), in a process running as uid and gid, and returns once it has
// exited. On tmpfs such a write moves neither the change nor the
// modification time.
// Every directory above path must be searchable by uid. The helper is C,
// built with gcc: without gcc t is skipped, or fails under CI. Needs root.
func WriteShared(t testing.TB, path string, off int64, uid, gid int) {
	t.Helper()
	RequireRoot(t)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		unavailable(t, "gcc is needed to build the shared-mapping writer: "+err.Error())
	}
	// Not t.TempDir: its parents are 0700, out of uid's reach.
	dir, err := os.MkdirTemp("", "drmfilter-sharedwrite-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, bin := filepath.Join(dir, "sharedwrite.c"), filepath.Join(dir, "sharedwrite")
	if err := os.WriteFile(src, []byte(sharedWriteC), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, path, strconv.FormatInt(off, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shared-mapping write as uid %d: %v\n%s", uid, err, out)
	}
}

// ELFUnusedByte returns the offset of a byte of the ELF executable at path
// that running it never reads: the last of its section header table,
// which neither the kernel nor the dynamic loader loads. Changing it
// changes the file's hash and not what it does. 64-bit little-endian
// files only (amd64, arm64, riscv64).
func ELFUnusedByte(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h [64]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		t.Fatalf("%s: ELF header: %v", path, err)
	}
	if string(h[:4]) != "\x7fELF" || h[4] != 2 || h[5] != 1 {
		t.Fatalf("%s is not a 64-bit little-endian ELF file", path)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	shoff := binary.LittleEndian.Uint64(h[0x28:])
	shentsize := uint64(binary.LittleEndian.Uint16(h[0x3a:]))
	shnum := uint64(binary.LittleEndian.Uint16(h[0x3c:]))
	end := shoff + shentsize*shnum
	if shnum == 0 || end > uint64(fi.Size()) {
		t.Fatalf("%s has no section header table", path)
	}
	return int64(end - 1)
}
