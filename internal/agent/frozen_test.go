package agent

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// frozenFrom builds a frozen index of files (path -> dev, ino).
func frozenFrom(files map[string]fileKey) *frozenIndex {
	b := newFrozenBuilder()
	for p, k := range files {
		dir, base := splitPath(p)
		b.add(k.dev, k.ino, dir, base)
	}
	return b.build()
}

// Enough files to span several entry chunks and arena chunks, with inode
// numbers above 32 bits and the same inode numbers on two devices.
func TestFrozenIndexFindsEveryFile(t *testing.T) {
	files := map[string]fileKey{}
	for i := range 3*entryChunk + 17 {
		ino := uint64(i) + 1<<33
		files[fmt.Sprintf("/srv/d%d/file-%06d.txt", i%97, i)] = fileKey{1, ino}
		if i%5 == 0 {
			files[fmt.Sprintf("/mnt/other/file-%06d", i)] = fileKey{2, ino}
		}
	}
	files["/top"] = fileKey{3, 7}
	f := frozenFrom(files)
	if len(f.arena) < 2 || len(f.chunks) < 4 {
		t.Fatalf("test does not span chunks: %d arena chunks, %d entry chunks", len(f.arena), len(f.chunks))
	}
	if f.alive != len(files) {
		t.Errorf("alive %d, want %d", f.alive, len(files))
	}
	for p, k := range files {
		i, ok := f.find(k.dev, k.ino)
		if !ok || f.path(i) != p {
			t.Fatalf("find(%d, %d) = %v; want %s", k.dev, k.ino, ok, p)
		}
		dir, base := splitPath(p)
		j, ok := f.findPath(dir, base)
		if !ok || j != i {
			t.Fatalf("findPath(%s) = %d, %v; want entry %d", p, j, ok, i)
		}
	}
	for _, miss := range []fileKey{{1, 5}, {4, 1 << 33}, {2, 1<<33 + 1}} {
		if _, ok := f.find(miss.dev, miss.ino); ok {
			t.Errorf("found %v, which was never added", miss)
		}
	}
	if _, ok := f.findPath("/srv/d1", "nothing"); ok {
		t.Error("found a path that was never added")
	}
}

func TestFrozenIndexKill(t *testing.T) {
	f := frozenFrom(map[string]fileKey{"/a/one": {1, 1}, "/a/two": {1, 2}})
	i, _ := f.find(1, 1)
	f.kill(i)
	f.kill(i) // twice: counted once
	if _, ok := f.find(1, 1); ok {
		t.Error("a killed entry is still found by inode")
	}
	if _, ok := f.findPath("/a", "one"); ok {
		t.Error("a killed entry is still found by path")
	}
	if f.alive != 1 {
		t.Errorf("alive %d, want 1", f.alive)
	}
	if i, ok := f.find(1, 2); !ok || f.path(i) != "/a/two" {
		t.Errorf("killing one entry lost the other: %v", ok)
	}
}

func TestFrozenIndexEmpty(t *testing.T) {
	f := newFrozenBuilder().build()
	if _, ok := f.find(1, 1); ok {
		t.Error("found in an empty index")
	}
	if _, ok := f.findPath("/", "a"); ok {
		t.Error("found a path in an empty index")
	}
}

func TestFlagSortGroupsByBucket(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 1000} {
		const buckets = 16
		items := make([]uint32, n)
		for i := range items {
			items[i] = r.Uint32N(buckets)
		}
		start := make([]uint32, buckets+1)
		flagSort(uint32(n), buckets, start, func(i uint32) uint32 { return items[i] },
			func(i, j uint32) { items[i], items[j] = items[j], items[i] })
		for b := range uint32(buckets) {
			for i := start[b]; i < start[b+1]; i++ {
				if items[i] != b {
					t.Fatalf("n=%d: item %d of bucket %d is in bucket %d's range", n, items[i], b, b)
				}
			}
		}
		if start[buckets] != uint32(n) {
			t.Fatalf("n=%d: buckets end at %d", n, start[buckets])
		}
	}
}

// The index (frozen part and learned maps) behaves like a plain map
// of inode to path under a random mix of walks, renames, replacements and
// deletions.
func TestIdentityIndexMatchesAModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := newIdentityIndex(1 << 20)
	model := map[fileKey]string{}
	owner := map[string]fileKey{} // the model's reverse direction
	name := func() string { return fmt.Sprintf("/d%d/f%d", r.IntN(30), r.IntN(3000)) }
	key := func() fileKey { return fileKey{uint64(1 + r.IntN(2)), uint64(r.IntN(4000))} }
	// A walk: distinct inodes, distinct paths.
	walked := map[string]fileKey{}
	seen := map[fileKey]bool{}
	for len(walked) < 2000 {
		k, p := key(), name()
		if _, dup := walked[p]; dup || seen[k] {
			continue
		}
		walked[p], seen[k], model[k], owner[p] = k, true, p, k
	}
	x.frozen = frozenFrom(walked)
	learn := func(k fileKey, p string) {
		if mk, ok := owner[p]; ok && mk != k {
			delete(model, mk)
		}
		if old, ok := model[k]; ok {
			delete(owner, old)
		}
		model[k], owner[p] = p, k
		x.learn(k.dev, k.ino, p)
	}
	for step := range 200000 {
		switch op := r.IntN(10); {
		case op < 6:
			learn(key(), name())
		case op < 8:
			p := name()
			if mk, ok := owner[p]; ok {
				delete(model, mk)
				delete(owner, p)
			}
			x.forgetPath(p)
		default:
			k := key()
			got, ok := x.lookup(k.dev, k.ino)
			if want, wok := model[k]; ok != wok || got != want {
				t.Fatalf("step %d: lookup(%v) = %q, %v; want %q, %v", step, k, got, ok, want, wok)
			}
		}
		if step%10000 == 0 && x.len() != len(model) {
			t.Fatalf("step %d: %d entries, model has %d", step, x.len(), len(model))
		}
	}
	for k, want := range model {
		if got, ok := x.lookup(k.dev, k.ino); !ok || got != want {
			t.Fatalf("lookup(%v) = %q, %v; want %q", k, got, ok, want)
		}
	}
}

// Learned files are bounded: once the maps are full, new files are not
// learned, the index asks once for a new walk, and the walk (which finds
// the files on disk) makes room again. Known files still move.
func TestIdentityIndexAsksForAWalkWhenFull(t *testing.T) {
	x := newIdentityIndex(1 << 20)
	x.learnedCap = 100
	asked := 0
	x.onFull = func() { asked++ }
	x.frozen = frozenFrom(map[string]fileKey{"/walked/a": {1, 1}})
	for i := range 150 {
		x.learn(1, uint64(i+2), fmt.Sprintf("/learned/f%d", i))
	}
	if asked != 1 {
		t.Errorf("asked for a walk %d times, want once", asked)
	}
	if x.len() != 101 {
		t.Errorf("%d entries, want the walked file and 100 learned", x.len())
	}
	if _, ok := x.lookup(1, 140); ok {
		t.Error("a file past the cap was learned")
	}
	x.learn(1, 1, "/walked/renamed") // known: moves even when full
	if got, _ := x.lookup(1, 1); got != "/walked/renamed" {
		t.Errorf("a known file did not move when full: %q", got)
	}
	x.learn(1, 3, "/learned/moved") // known in the maps: moves too
	if got, _ := x.lookup(1, 3); got != "/learned/moved" {
		t.Errorf("a learned file did not move when full: %q", got)
	}
	// The walk resets the maps and may ask again later.
	x.mu.Lock()
	x.frozen, x.t, x.askedFor = frozenFrom(map[string]fileKey{"/walked/renamed": {1, 1}}), newIndexTables(), false
	x.mu.Unlock()
	for i := range 101 {
		x.learn(2, uint64(i), fmt.Sprintf("/again/f%d", i))
	}
	if asked != 2 {
		t.Errorf("asked %d times after the second fill, want 2", asked)
	}
}

// BenchmarkIdentityLookup: the per-event inode lookup over 1,000,000
// walked files, for an inode the index does not know (every uncovered
// open) and for one it knows (a protected file reached by another name).
//
//	go test -run '^$' -bench IdentityLookup -benchmem ./internal/agent/
func BenchmarkIdentityLookup(b *testing.B) {
	fb := newFrozenBuilder()
	const n = 1_000_000
	for i := range n {
		fb.add(42, uint64(1000+i), fmt.Sprintf("/srv/dept%d/docs", i/1000), fmt.Sprintf("f%04d", i%1000))
	}
	x := newIdentityIndex(maxIndexed)
	x.frozen = fb.build()
	b.Run("miss", func(b *testing.B) {
		for i := range b.N {
			if _, ok := x.lookup(42, uint64(2*n+i%n)); ok {
				b.Fatal("hit")
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		for i := range b.N {
			if _, ok := x.lookup(42, uint64(1000+(i*7919)%n)); !ok {
				b.Fatal("miss")
			}
		}
	})
}
