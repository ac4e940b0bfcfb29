package glob

// MatchesUnder reports whether p could match dir itself or a path below it
// (dir/...), where dir is an absolute, clean path. The agent asks it of
// every mount point below a pattern's literal prefix: a filesystem mounted
// on dir can hold a matching file only if this is true, as for a secret
// volume mounted at /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~secret/tok
// and the pattern /var/lib/kubelet/pods/*/volumes/kubernetes.io~secret/**.
//
// The segments of dir are matched one by one; once dir runs out, or a **
// takes what is left of it, the answer is yes. It errs on the side of yes:
// a wildcard left after dir is assumed to match some name.
func (p *Pattern) MatchesUnder(dir string) bool {
	if dir == "" || dir[0] != '/' {
		return false
	}
	pos := 1
	if p.prefix > 0 {
		pre := p.raw[:p.prefix]
		switch {
		case len(dir) <= len(pre):
			// dir is the literal prefix, or one of its ancestors.
			return pre[:len(dir)] == dir && (len(dir) == len(pre) || dir == "/" || pre[len(dir)] == '/')
		case dir[:len(pre)] == pre && dir[len(pre)] == '/':
			pos = len(pre) + 1
		default:
			return false
		}
	}
	return underSegs(p.segs, dir, pos)
}

// underSegs is MatchesUnder for segs against dir[pos:].
func underSegs(segs []segment, dir string, pos int) bool {
	for _, s := range segs {
		if pos >= len(dir) || s.kind == segDoubleStar {
			return true
		}
		seg, next, _ := segmentAt(dir, pos)
		if s.kind == segLiteral && seg != s.text || s.kind == segWild && !s.matchWild(seg) {
			return false
		}
		pos = next
	}
	return pos >= len(dir)
}

// MatchesUnder reports whether some pattern of t could match dir itself or
// a path below it: Pattern.MatchesUnder for every pattern at once.
func (t *Trie) MatchesUnder(dir string) bool {
	if t.size == 0 || dir == "" || dir[0] != '/' {
		return false
	}
	return t.root.under(dir, 1)
}

// under walks dir[pos:] down from n. Every node lies on the way of at least
// one inserted pattern, so reaching one with dir used up, or one with a **
// edge, means some pattern can match below dir.
func (n *node) under(dir string, pos int) bool {
	if pos >= len(dir) || n.star != nil {
		return true
	}
	seg, next, _ := segmentAt(dir, pos)
	if c := n.lit[seg]; c != nil && c.under(dir, next) {
		return true
	}
	for i := range n.wild {
		if n.wild[i].wild.matchWild(seg) && n.wild[i].next.under(dir, next) {
			return true
		}
	}
	return false
}
