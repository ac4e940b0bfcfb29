package agent

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkIdentityIndexMemory fills the identity index with 1,000,000
// protected files (1,000 directories of 1,000, paths as long as those of
// bench/memory.sh) and reports the heap it keeps per inode: the share of
// the agent's peak RSS that grows with the number of protected files.
// "walked" builds it as a walk of the policies' roots does; "learned"
// learns every file one by one, as the agent does with files created while
// it runs (the maps; the agent bounds them with learnedCap).
//
//	go test -run '^$' -bench IdentityIndexMemory -benchtime 1x ./internal/agent/
func BenchmarkIdentityIndexMemory(b *testing.B) {
	b.Run("walked", func(b *testing.B) {
		benchIndexMemory(b, func(x *identityIndex, fill func(func(dev, ino uint64, path string))) {
			fb := newFrozenBuilder()
			fill(func(dev, ino uint64, path string) {
				dir, base := splitPath(path)
				fb.add(dev, ino, dir, base)
			})
			x.frozen = fb.build()
		})
	})
	b.Run("learned", func(b *testing.B) {
		benchIndexMemory(b, func(x *identityIndex, fill func(func(dev, ino uint64, path string))) {
			x.learnedCap = x.limit
			fill(x.learn)
		})
	})
}

func benchIndexMemory(b *testing.B, build func(*identityIndex, func(func(dev, ino uint64, path string)))) {
	const dirs, files = 1000, 1000
	var perInode float64
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		x := newIdentityIndex(maxIndexed)
		build(x, func(add func(dev, ino uint64, path string)) {
			ino := uint64(1000)
			for d := range dirs {
				dir := fmt.Sprintf("/tmp/drm-memory.Ab3dEf/t/srv/dept%d/docs", d+1)
				for f := range files {
					add(42, ino, fmt.Sprintf("%s/f%04d", dir, f))
					ino++
				}
			}
		})
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if got := x.len(); got != dirs*files {
			b.Fatalf("indexed %d files, want %d", got, dirs*files)
		}
		perInode = float64(after.HeapAlloc-before.HeapAlloc) / float64(x.len())
		runtime.KeepAlive(x)
		b.StartTimer()
	}
	b.ReportMetric(perInode, "heapB/inode")
	b.ReportMetric(perInode*dirs*files/1e6, "heapMB/1M")
}
