package glob

// Trie indexes many patterns by their segments. Literal segments are map
// lookups, so a path that shares no literal prefix with any pattern is
// rejected after one lookup; only wildcard edges are tested one by one.
//
// A Trie is built once (Insert) and then only read (Match), which is safe
// from many goroutines.
type Trie struct {
	root node
	size int
}

type node struct {
	lit  map[string]*node
	wild []wildEdge
	star *node // reached by a ** segment
	ids  []int32
}

type wildEdge struct {
	wild segment
	next *node
}

// Insert adds p under id. The same id may be inserted for several patterns.
func (t *Trie) Insert(p *Pattern, id int32) {
	n := &t.root
	p.literalPrefix(func(seg string) { n = n.literal(seg) })
	for _, s := range p.segs {
		switch s.kind {
		case segLiteral:
			n = n.literal(s.text)
		case segWild:
			var c *node
			for _, w := range n.wild {
				if w.wild.text == s.text {
					c = w.next
					break
				}
			}
			if c == nil {
				c = &node{}
				n.wild = append(n.wild, wildEdge{wild: s, next: c})
			}
			n = c
		case segDoubleStar:
			if n.star == nil {
				n.star = &node{}
			}
			n = n.star
		}
	}
	n.ids = append(n.ids, id)
	t.size++
}

// literal returns the child of n for the literal segment seg, adding it if
// needed.
func (n *node) literal(seg string) *node {
	if n.lit == nil {
		n.lit = make(map[string]*node)
	}
	c := n.lit[seg]
	if c == nil {
		c = &node{}
		n.lit[seg] = c
	}
	return c
}

// Len is the number of patterns inserted.
func (t *Trie) Len() int { return t.size }

// Match appends to dst the id of every pattern that matches name (an
// absolute, clean path) and returns the extended slice. An id can appear
// more than once when several of its patterns match, or one pattern matches
// in several ways. Match allocates only when dst runs out of capacity.
func (t *Trie) Match(dst []int32, name string) []int32 {
	if name == "" || name[0] != '/' {
		return dst
	}
	return t.root.match(dst, name, 1)
}

// Empty reports whether no pattern was inserted.
func (t *Trie) Empty() bool { return t.size == 0 }

func (n *node) match(dst []int32, name string, pos int) []int32 {
	if n.star != nil {
		// ** matches zero or more segments: try the rest of the patterns
		// at every remaining segment boundary.
		p := pos
		for {
			dst = n.star.match(dst, name, p)
			next, ok := nextSegment(name, p)
			if !ok {
				break
			}
			p = next
		}
	}
	seg, next, ok := segmentAt(name, pos)
	if !ok {
		return append(dst, n.ids...)
	}
	if c := n.lit[seg]; c != nil {
		dst = c.match(dst, name, next)
	}
	for i := range n.wild {
		if n.wild[i].wild.matchWild(seg) {
			dst = n.wild[i].next.match(dst, name, next)
		}
	}
	return dst
}
