package policy

import (
	"slices"
	"strings"
)

// setAlloc allocates what a loaded Set keeps, which the agent holds for as
// long as it runs. It gives equal strings and equal pod label maps one copy
// (a large set repeats rule names, executables, users, namespaces and
// selectors thousands of times), and it packs strings into shared chunks
// and structs and short lists into slabs. Packed, they fill pages of their
// own; allocated one by one, they would be scattered among the parser's
// garbage (its node trees are many times the size of the Set), each keeping
// a page that is otherwise free from being reused or returned to the
// system, which doubled what a loaded set costs in resident memory.
type setAlloc struct {
	strs      map[string]string
	chunk     strings.Builder
	nextChunk int // bytes in the next chunk
	labels    map[string]map[string]string

	policies   slab[Policy]
	rules      slab[Rule]
	subjects   slab[Subjects]
	containers slab[ContainerSelector]
	kubes      slab[KubernetesSelector]
	labelSels  slab[LabelSelector]
	envs       slab[EnvironmentSelector]
	strLists   slab[string]
	idRefs     slab[IDRef]

	// opPos is where every operation outside portableOps is written,
	// for the Set to keep.
	opPos []opPos
}

func newSetAlloc() *setAlloc {
	return &setAlloc{strs: map[string]string{}, labels: map[string]map[string]string{}}
}

// Chunks of strings grow from strChunkMin to strChunkMax bytes; strings
// longer than strChunkMax/16 get an allocation of their own.
const (
	strChunkMin = 1 << 10
	strChunkMax = 16 << 10
)

// str returns s, or the equal string it returned before.
func (a *setAlloc) str(s string) string {
	if c, ok := a.strs[s]; ok {
		return c
	}
	c := s
	if len(s) <= strChunkMax/16 {
		if a.chunk.Cap()-a.chunk.Len() < len(s) {
			size := max(a.nextChunk, strChunkMin)
			a.nextChunk = min(2*size, strChunkMax)
			a.chunk = strings.Builder{}
			a.chunk.Grow(size)
		}
		// A Builder only ever appends: the strings it returned before
		// stay as they are.
		start := a.chunk.Len()
		a.chunk.WriteString(s)
		c = a.chunk.String()[start:]
	}
	a.strs[c] = c
	return c
}

// labelMap returns a map equal to m, shared with every other equal map
// given to it: maps of labels to match are only read once loaded.
func (a *setAlloc) labelMap(m map[string]string) map[string]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		// Keys and values cannot hold a NUL: they are validated labels.
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	key := b.String()
	if c, ok := a.labels[key]; ok {
		return c
	}
	a.labels[key] = m
	return m
}

// slab hands out values of T and short lists of them from chunks that grow
// from slabMin to slabMax elements.
type slab[T any] struct {
	free []T
	next int // elements in the next chunk
}

const (
	slabMin = 8
	slabMax = 256
)

// refill starts a chunk with room for at least n elements; what was left
// of the last one is not used.
func (s *slab[T]) refill(n int) {
	size := max(s.next, slabMin)
	s.next = min(2*size, slabMax)
	s.free = make([]T, max(size, n))
}

// one returns a pointer to a zero T.
func one[T any](s *slab[T]) *T {
	if len(s.free) == 0 {
		s.refill(1)
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

// list returns an empty list with room for n elements (nil for none).
// Appending past n allocates as usual.
func list[T any](s *slab[T], n int) []T {
	if n == 0 {
		return nil
	}
	if len(s.free) < n {
		s.refill(n)
	}
	l := s.free[:0:n]
	s.free = s.free[n:]
	return l
}
