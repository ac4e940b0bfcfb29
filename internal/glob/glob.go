// Package glob compiles absolute path patterns and matches many of them at
// once.
//
// A pattern is an absolute, slash-separated path whose segments are either
// literal names, single-segment wildcards in path.Match syntax (`*`, `?`,
// `[a-z]`, `\` escapes: none of them crosses a `/`), or `**`, a whole segment
// that matches zero or more segments.
//
// Files:
//   - glob.go: Pattern, one compiled pattern, and its validation.
//   - trie.go: Trie, many patterns indexed by their literal segments so that a
//     lookup walks the path once instead of testing every pattern.
//   - under.go: MatchesUnder, whether a pattern can match at or below a
//     directory (which mounts below a pattern's literal prefix to mark).
//
// Why hand-written: the glob libraries we looked at match one pattern at a
// time (gobwas/glob, doublestar) and allocate or test every pattern per path;
// drmfilter decides every file open on the host against thousands of patterns
// and needs a shared prefix index with zero allocations per lookup.
package glob

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ErrBadPattern is matched (errors.Is) by every error Compile returns.
var ErrBadPattern = errors.New("invalid glob")

// PatternError says why a pattern is invalid.
type PatternError struct {
	Pattern string
	Reason  string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("invalid glob %q: %s", e.Pattern, e.Reason)
}

// Is makes errors.Is(err, ErrBadPattern) true.
func (e *PatternError) Is(target error) bool { return target == ErrBadPattern }

type segKind uint8

const (
	segLiteral    segKind = iota // matches exactly text
	segWild                      // path.Match pattern within one segment
	segDoubleStar                // "**": zero or more segments
)

// segment is one compiled path segment. It is kept small: a policy set
// holds tens of thousands of them.
type segment struct {
	text string // literal text, or the wildcard as written
	kind segKind
	// For segWild: general says path.Match is needed; otherwise the
	// segment has a single * at star, and a name must start with
	// text[:star] and end with text[star+1:], without overlapping. Those
	// shapes (*, *.ext, prefix*, prefix*suffix) are the ones policies use
	// most, and comparing them is several times faster than path.Match.
	general bool
	star    int32
}

func wildSegment(s string) segment {
	w := segment{kind: segWild, text: s}
	if strings.ContainsAny(s, `?[\`) || strings.Count(s, "*") != 1 {
		w.general = true
		return w
	}
	w.star = int32(strings.IndexByte(s, '*'))
	return w
}

// matchWild reports whether seg matches the wildcard segment w.
func (w *segment) matchWild(seg string) bool {
	if w.general {
		m, _ := path.Match(w.text, seg)
		return m
	}
	prefix, suffix := w.text[:w.star], w.text[w.star+1:]
	return len(seg) >= len(prefix)+len(suffix) &&
		seg[:len(prefix)] == prefix && seg[len(seg)-len(suffix):] == suffix
}

// Pattern is one compiled path pattern. It is immutable and safe for
// concurrent use.
type Pattern struct {
	raw string
	// The leading literal segments are not compiled: a name matches them
	// when it starts with raw[:prefix] followed by a / or nothing. segs
	// are the segments after them, from the first wildcard on.
	segs     []segment
	prefix   int32
	literals int32
}

// Compile validates and compiles an absolute path pattern.
func Compile(pattern string) (*Pattern, error) {
	bad := func(reason string) (*Pattern, error) {
		return nil, &PatternError{Pattern: pattern, Reason: reason}
	}
	if pattern == "" {
		return bad("empty pattern")
	}
	if pattern[0] != '/' {
		return bad("must be an absolute path starting with /")
	}
	p := &Pattern{raw: pattern}
	if pattern == "/" {
		return p, nil
	}
	rest := strings.TrimSuffix(pattern[1:], "/")
	var buf [8]segment
	segs := buf[:0]
	end := 0 // of the segment before s in pattern
	for s := range strings.SplitSeq(rest, "/") {
		start := end + 1
		end = start + len(s)
		switch {
		case s == "":
			return bad("empty path segment (//)")
		case s == "." || s == "..":
			return bad(fmt.Sprintf("path segment %q is not allowed; write the path without it", s))
		case s == "**":
			// Two ** in a row mean the same as one.
			if n := len(segs); n > 0 && segs[n-1].kind == segDoubleStar {
				continue
			}
			segs = append(segs, segment{kind: segDoubleStar, text: s})
		case strings.Contains(s, "**"):
			return bad(fmt.Sprintf("** must be a whole path segment, as in /dir/**/file, not %q", s))
		case strings.ContainsAny(s, `*?[\`):
			// path.Match reports a malformed pattern only when it gets that
			// far, so check it against a name that makes it scan everything.
			if _, err := path.Match(s, strings.Repeat("x", len(s))); err != nil {
				return bad(fmt.Sprintf("segment %q: unbalanced [ ] or trailing \\", s))
			}
			if err := checkClasses(s); err != nil {
				return bad(fmt.Sprintf("segment %q: %v", s, err))
			}
			segs = append(segs, wildSegment(s))
		default:
			if len(segs) == 0 {
				p.prefix = int32(end)
			} else {
				segs = append(segs, segment{kind: segLiteral, text: s})
			}
			p.literals++
		}
	}
	if len(segs) > 0 {
		p.segs = slices.Clone(segs)
	}
	return p, nil
}

// checkClasses rejects malformed character classes that path.Match does not
// reach when the text before them already fails to match.
func checkClasses(s string) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return errors.New("trailing \\")
			}
			i++
		case '[':
			j := i + 1
			if j < len(s) && s[j] == '^' {
				j++
			}
			closed := false
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == ']' && j > i+1 {
					closed = true
					break
				}
			}
			if !closed {
				return errors.New("unclosed [")
			}
			i = j
		}
	}
	return nil
}

// MustCompile is Compile for patterns known to be valid (tests, constants).
func MustCompile(pattern string) *Pattern {
	p, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.raw }

// Specificity is the number of literal segments: /srv/finance/** has 2,
// /srv/*/q3.xlsx has 2, /** has 0. Policies use it to rank matches.
func (p *Pattern) Specificity() int { return int(p.literals) }

// IsLiteral reports whether the pattern has no wildcard at all.
func (p *Pattern) IsLiteral() bool { return len(p.segs) == 0 }

// Match reports whether the absolute, clean path matches the pattern.
// It does not allocate.
func (p *Pattern) Match(name string) bool {
	if name == "" || name[0] != '/' {
		return false
	}
	pos := 1
	if p.prefix > 0 {
		pre := p.raw[:p.prefix]
		if !strings.HasPrefix(name, pre) {
			return false
		}
		switch {
		case len(name) == len(pre):
			pos = len(name)
		case name[len(pre)] == '/':
			pos = len(pre) + 1
		default:
			return false
		}
	}
	return matchSegs(p.segs, name, pos)
}

// literalPrefix calls f with each leading literal segment of p.
func (p *Pattern) literalPrefix(f func(seg string)) {
	if p.prefix == 0 {
		return
	}
	for s := range strings.SplitSeq(p.raw[1:p.prefix], "/") {
		f(s)
	}
}

// matchSegs matches segs against name[pos:], where pos is the start of a
// segment (or len(name)).
func matchSegs(segs []segment, name string, pos int) bool {
	for i, s := range segs {
		if s.kind == segDoubleStar {
			rest := segs[i+1:]
			if len(rest) == 0 {
				return true
			}
			for {
				if matchSegs(rest, name, pos) {
					return true
				}
				next, ok := nextSegment(name, pos)
				if !ok {
					return false
				}
				pos = next
			}
		}
		seg, next, ok := segmentAt(name, pos)
		if !ok {
			return false
		}
		if s.kind == segLiteral {
			if seg != s.text {
				return false
			}
		} else if !s.matchWild(seg) {
			return false
		}
		pos = next
	}
	return pos >= len(name)
}

// segmentAt returns the segment starting at pos and the start of the next.
func segmentAt(name string, pos int) (seg string, next int, ok bool) {
	if pos >= len(name) {
		return "", pos, false
	}
	end := strings.IndexByte(name[pos:], '/')
	if end < 0 {
		return name[pos:], len(name), true
	}
	return name[pos : pos+end], pos + end + 1, true
}

func nextSegment(name string, pos int) (int, bool) {
	_, next, ok := segmentAt(name, pos)
	return next, ok
}
