package nspath

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// BenchmarkTranslateTables is the pure algorithm on the docker fixture:
// a volume file, the container's 21 mounts scanned.
func BenchmarkTranslateTables(b *testing.B) {
	host := mountinfo.NewTable(loadFixture(b, "docker", "host"))
	proc := mountinfo.NewTable(loadFixture(b, "docker", "proc"))
	const p = "/var/lib/docker/volumes/pgdata/_data/base/1/pg_filenode.map"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := TranslateTables(host, proc, p, 259, 2); !ok {
			b.Fatal("not visible")
		}
	}
}

// BenchmarkContainerPath measures a call on a cached view: the two stats
// of /proc/PID/ns/mnt and /proc/PID/root that key the cache, plus the
// translation.
func BenchmarkContainerPath(b *testing.B) {
	b.Run("fixture", func(b *testing.B) {
		root := fixtureRoot(b)
		r := New(root, Options{SelfRoot: root, TTL: -1})
		const p = "/var/lib/docker/volumes/pgdata/_data/base/1/pg_filenode.map"
		benchContainerPath(b, r, 42, p, dev(259, 2), "/data/base/1/pg_filenode.map")
	})
	b.Run("live-self", func(b *testing.B) {
		// This process's own view, through the real /proc: the agent's
		// table is shared, as for every process on the host.
		p := filepath.Join(b.TempDir(), "f")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		st := statT(b, p)
		r := New("/", Options{TTL: -1})
		benchContainerPath(b, r, os.Getpid(), p, st.Dev, p)
	})
	b.Run("live-self-verified", func(b *testing.B) {
		// ContainerPathOf: the same plus the check of the answer inside
		// the process's root (open, openat2, fstat, two closes).
		p := filepath.Join(b.TempDir(), "f")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		st := statT(b, p)
		r := New("/", Options{TTL: -1})
		pid := os.Getpid()
		if got, ok, err := r.ContainerPathOf(pid, p, st.Dev, st.Ino); err != nil || !ok || got != p {
			b.Fatalf("ContainerPathOf = %q, %v, %v", got, ok, err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := r.ContainerPathOf(pid, p, st.Dev, st.Ino); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

func benchContainerPath(b *testing.B, r *Resolver, pid int, p string, dev uint64, want string) {
	b.Helper()
	if got, ok, err := r.ContainerPath(pid, p, dev); err != nil || !ok || got != want {
		b.Fatalf("ContainerPath = %q, %v, %v; want %q", got, ok, err, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := r.ContainerPath(pid, p, dev); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
