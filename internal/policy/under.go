package policy

// PathsUnder reports whether some path glob (spec.files.paths) could match
// dir or a path below it, where dir is an absolute, clean host path. The
// agent asks it of the mount points below the policies' Roots: a
// filesystem mounted on dir needs marking only if it can hold covered
// files. It errs on the side of yes (glob.Trie.MatchesUnder); container
// paths are not consulted, as policies with them cover every filesystem
// (Roots reports anywhere).
func (m *Matcher) PathsUnder(dir string) bool { return m.paths.MatchesUnder(dir) }
