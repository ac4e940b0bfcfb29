package agent

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// frozenIndex is the bulk of the identity index: the files found by
// walking the policies' roots, laid out for a million entries in about 25
// bytes each (see BenchmarkIdentityIndexMemory). After it is built nothing
// is added to it; entries can only die (their name was deleted or now
// names another inode), and files learned later live in the small
// map-based part of identityIndex until the next walk.
//
// It is hand-written because no library offers the layout that matters
// here: Go maps keyed by inode and by path cost about 215 bytes a file, and
// a general open-addressing table would still keep the path strings. The
// layout:
//
//   - entries: 12 bytes each (inode number and a reference to the name
//     record), in chunks of entryChunk so that building never needs a
//     second copy of the whole table, grouped by a hash of the inode
//     number: keyStart[b] to keyStart[b+1] are the entries of bucket b
//     (about eight). The device is checked through the name record's
//     directory, so it does not take room in every entry.
//   - name records in a chunked byte arena: the directory number as a
//     uvarint, then the base name preceded by its length as a uvarint.
//   - directories: one record per directory path and device.
//   - byPath: the entry numbers again, grouped by a hash of the path, to
//     find the entry of a path when its name is deleted or taken by
//     another inode.
//
// Readers hold identityIndex.mu for reading; kill needs it for writing.
type frozenIndex struct {
	seed     maphash.Seed
	dirs     []frozenDir
	chunks   [][]frozenEntry
	arena    [][]byte
	bits     uint8 // log2 of the number of buckets
	keyStart []uint32
	byPath   []uint32
	pathFrom []uint32
	alive    int
}

// frozenEntry is an inode number and the arena offset of its name record;
// ref 0 (the arena's first byte is never a record) marks a dead entry. Three
// uint32 rather than a uint64 keep the entry at 12 bytes.
type frozenEntry struct{ inoLo, inoHi, ref uint32 }

func (e *frozenEntry) ino() uint64 { return uint64(e.inoHi)<<32 | uint64(e.inoLo) }

type frozenDir struct {
	path  string
	dev   uint64
	phash uint64 // hash of path, the start of its files' path hashes
}

const (
	entryShift = 13
	entryChunk = 1 << entryShift // entries per chunk (96 KiB)
	arenaShift = 16
	arenaChunk = 1 << arenaShift // bytes per arena chunk
)

func (f *frozenIndex) at(i uint32) *frozenEntry {
	return &f.chunks[i>>entryShift][i&(entryChunk-1)]
}

// record decodes the name record at ref: its directory and base name. The
// name aliases the arena.
func (f *frozenIndex) record(ref uint32) (dir uint32, name []byte) {
	b := f.arena[ref>>arenaShift][ref&(arenaChunk-1):]
	d, n := binary.Uvarint(b)
	l, m := binary.Uvarint(b[n:])
	return uint32(d), b[n+m : n+m+int(l)]
}

func (f *frozenIndex) keyBucket(ino uint64) uint32 {
	if f.bits == 0 {
		return 0
	}
	return uint32((ino * 0x9e3779b97f4a7c15) >> (64 - f.bits))
}

// pathHash combines the hash of a directory path and of a base name.
func pathHash(dirHash, nameHash uint64) uint64 {
	return dirHash ^ nameHash*0xff51afd7ed558ccd
}

func (f *frozenIndex) pathBucket(h uint64) uint32 {
	if f.bits == 0 {
		return 0
	}
	return uint32(h >> (64 - f.bits))
}

// find returns the live entry of (dev, ino).
func (f *frozenIndex) find(dev, ino uint64) (uint32, bool) {
	if f == nil || len(f.keyStart) == 0 {
		return 0, false
	}
	b := f.keyBucket(ino)
	for i := f.keyStart[b]; i < f.keyStart[b+1]; i++ {
		e := f.at(i)
		if e.ino() != ino || e.ref == 0 {
			continue
		}
		if d, _ := f.record(e.ref); f.dirs[d].dev == dev {
			return i, true
		}
	}
	return 0, false
}

// findPath returns the live entry named dir/base.
func (f *frozenIndex) findPath(dir, base string) (uint32, bool) {
	if f == nil || len(f.pathFrom) == 0 {
		return 0, false
	}
	b := f.pathBucket(pathHash(maphash.String(f.seed, dir), maphash.String(f.seed, base)))
	for _, i := range f.byPath[f.pathFrom[b]:f.pathFrom[b+1]] {
		e := f.at(i)
		if e.ref == 0 {
			continue
		}
		if d, name := f.record(e.ref); string(name) == base && f.dirs[d].path == dir {
			return i, true
		}
	}
	return 0, false
}

// path returns the full path of entry i.
func (f *frozenIndex) path(i uint32) string {
	d, name := f.record(f.at(i).ref)
	return joinPath(f.dirs[d].path, name)
}

// is reports whether entry i is named dir/base.
func (f *frozenIndex) is(i uint32, dir, base string) bool {
	d, name := f.record(f.at(i).ref)
	return string(name) == base && f.dirs[d].path == dir
}

func (f *frozenIndex) kill(i uint32) {
	if e := f.at(i); e.ref != 0 {
		e.ref = 0
		f.alive--
	}
}

func joinPath(dir string, name []byte) string {
	if dir == "/" {
		return "/" + string(name)
	}
	return dir + "/" + string(name)
}

// frozenBuilder collects entries for a frozenIndex. Entries and names go
// into fixed-size chunks, so the collection never copies what it already
// holds; build then groups the entries in place.
type frozenBuilder struct {
	f      *frozenIndex
	dirIDs map[frozenDirKey]uint32 // only while building
	n      uint32
}

type frozenDirKey struct {
	path string
	dev  uint64
}

func newFrozenBuilder() *frozenBuilder {
	f := &frozenIndex{seed: maphash.MakeSeed(), arena: [][]byte{make([]byte, 1, arenaChunk)}}
	return &frozenBuilder{f: f, dirIDs: map[frozenDirKey]uint32{}}
}

// add adds a file. A walk meets every inode once per name; a second name of
// the same inode (a hard link inside the protected tree) is added too, and
// find returns one of them.
func (b *frozenBuilder) add(dev, ino uint64, dir, name string) {
	f := b.f
	k := frozenDirKey{dir, dev}
	d, ok := b.dirIDs[k]
	if !ok {
		d = uint32(len(f.dirs))
		f.dirs = append(f.dirs, frozenDir{path: dir, dev: dev, phash: maphash.String(f.seed, dir)})
		b.dirIDs[k] = d
	}
	var hdr [2 * binary.MaxVarintLen32]byte
	h := binary.PutUvarint(hdr[:], uint64(d))
	h += binary.PutUvarint(hdr[h:], uint64(len(name)))
	need := h + len(name)
	last := f.arena[len(f.arena)-1]
	if len(last)+need > arenaChunk {
		size := arenaChunk
		if need > size { // a name longer than a chunk: no filesystem has one, but a path may
			return
		}
		last = make([]byte, 0, size)
		f.arena = append(f.arena, last)
	}
	ref := uint32(len(f.arena)-1)<<arenaShift | uint32(len(last))
	last = append(append(last, hdr[:h]...), name...)
	f.arena[len(f.arena)-1] = last
	if b.n&(entryChunk-1) == 0 {
		f.chunks = append(f.chunks, make([]frozenEntry, 0, entryChunk))
	}
	c := &f.chunks[len(f.chunks)-1]
	*c = append(*c, frozenEntry{inoLo: uint32(ino), inoHi: uint32(ino >> 32), ref: ref})
	b.n++
}

// build groups the entries by inode hash and by path hash and returns the
// index. The builder must not be used afterwards.
func (b *frozenBuilder) build() *frozenIndex {
	f := b.f
	b.dirIDs = nil
	n := b.n
	f.alive = int(n)
	// About eight entries a bucket: a lookup scans a cache line or two.
	if n > 8 {
		f.bits = uint8(bits.Len32(n/8 - 1))
	}
	buckets := uint32(1) << f.bits
	f.keyStart = make([]uint32, buckets+1)
	flagSort(n, buckets, f.keyStart,
		func(i uint32) uint32 { return f.keyBucket(f.at(i).ino()) },
		func(i, j uint32) { a, b := f.at(i), f.at(j); *a, *b = *b, *a })
	f.byPath = make([]uint32, n)
	for i := range f.byPath {
		f.byPath[i] = uint32(i)
	}
	f.pathFrom = make([]uint32, buckets+1)
	flagSort(n, buckets, f.pathFrom,
		func(i uint32) uint32 {
			d, name := f.record(f.at(f.byPath[i]).ref)
			return f.pathBucket(pathHash(f.dirs[d].phash, maphash.Bytes(f.seed, name)))
		},
		func(i, j uint32) { f.byPath[i], f.byPath[j] = f.byPath[j], f.byPath[i] })
	return f
}

// flagSort groups n items by bucket in place (an American flag sort: one
// counting pass, then each swap puts one item in its bucket for good) and
// fills start (len buckets+1) with where each bucket begins. No library
// sorts a chunked array in place in linear time.
func flagSort(n, buckets uint32, start []uint32, bucket func(uint32) uint32, swap func(i, j uint32)) {
	for i := range n {
		start[bucket(i)+1]++
	}
	for b := range buckets {
		start[b+1] += start[b]
	}
	next := make([]uint32, buckets)
	copy(next, start[:buckets])
	for b := range buckets {
		end := start[b+1]
		for next[b] < end {
			i := next[b]
			t := bucket(i)
			if t == b {
				next[b]++
				continue
			}
			swap(i, next[t])
			next[t]++
		}
	}
}
