package proc

import (
	"testing"

	"github.com/drmfilter/drmfilter/internal/environ"
)

// BenchmarkLookup measures Lookup of a live `sleep` child:
//
//   - hit-pidfd: cached, revalidated with fstat(pidfd), stat of
//     /proc/PID/exe and PIDFD_GET_INFO (the agent's path with
//     FAN_REPORT_PIDFD);
//   - hit-nopidfd: cached, revalidated by reading /proc/PID/stat twice and
//     /proc/PID/status once and stat'ing /proc/PID/exe;
//   - miss: a cache of one entry and two processes looked up in turn, so
//     every lookup reads /proc (readlink and stat of exe, status, stat);
//   - miss-environ: the same with Options.Environ set, so each miss also
//     asks the environ package for the container (its own cache is
//     defeated the same way).
//
// Run: go test -run XXX -bench Lookup -benchmem ./internal/proc
func BenchmarkLookup(b *testing.B) {
	b.Run("hit-pidfd", func(b *testing.B) {
		c := startB(b)
		r := NewResolver("/", Options{})
		if _, err := r.Lookup(c.pid, c.pidfd); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Lookup(c.pid, c.pidfd); err != nil {
				b.Fatal(err)
			}
		}
		if s := r.Stats(); s.Misses != 1 {
			b.Fatalf("stats %+v", s)
		}
	})
	b.Run("hit-nopidfd", func(b *testing.B) {
		c := startB(b)
		r := NewResolver("/", Options{})
		if _, err := r.Lookup(c.pid, -1); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Lookup(c.pid, -1); err != nil {
				b.Fatal(err)
			}
		}
		if s := r.Stats(); s.Misses != 1 {
			b.Fatalf("stats %+v", s)
		}
	})
	b.Run("miss", func(b *testing.B) { benchMiss(b, Options{CacheSize: 1}) })
	b.Run("miss-environ", func(b *testing.B) {
		benchMiss(b, Options{CacheSize: 1, Environ: environ.NewResolver("/", 1)})
	})
}

func benchMiss(b *testing.B, opts Options) {
	{
		c1, c2 := startB(b), startB(b)
		r := NewResolver("/", opts)
		cs := [2]*child{c1, c2}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			c := cs[i&1]
			i++
			if _, err := r.Lookup(c.pid, c.pidfd); err != nil {
				b.Fatal(err)
			}
		}
		if s := r.Stats(); s.Hits != 0 {
			b.Fatalf("stats %+v", s)
		}
	}
}

// BenchmarkSHA256Hit is a cached executable hash.
func BenchmarkSHA256Hit(b *testing.B) {
	c := startB(b)
	r := NewResolver("/", Options{})
	p, err := r.Lookup(c.pid, c.pidfd)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.SHA256(p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.SHA256(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA256Miss reads and hashes the `sleep` executable (about
// 44 KB here) every time.
func BenchmarkSHA256Miss(b *testing.B) {
	c := startB(b)
	r := NewResolver("/", Options{HashCacheSize: 1})
	p, err := r.Lookup(c.pid, c.pidfd)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.hmu.Lock()
		r.hashes.remove(p.ExeID)
		r.hmu.Unlock()
		if _, err := r.SHA256(p); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(p.ExeID.Size)
}
