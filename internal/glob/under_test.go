package glob

import (
	"strings"
	"testing"
)

func TestMatchesUnder(t *testing.T) {
	const secrets = "/var/lib/kubelet/pods/*/volumes/kubernetes.io~secret/**"
	cases := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{secrets,
			[]string{"/", "/var", "/var/lib/kubelet", "/var/lib/kubelet/pods", "/var/lib/kubelet/pods/0a1b",
				"/var/lib/kubelet/pods/0a1b/volumes", "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~secret",
				"/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~secret/tok", "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~secret/tok/a/b"},
			[]string{"/var/lib/kubelet/plugins", "/var/lib/kubeletx", "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~empty-dir/cache",
				"/var/lib/kubelet/pods/0a1b/etc-hosts", "/srv", "relative"}},
		{"/srv/finance/**", []string{"/", "/srv", "/srv/finance", "/srv/finance/a/b"}, []string{"/srv/fin", "/srv/financex", "/var"}},
		{"/etc/ssh/ssh_host_*_key", []string{"/etc", "/etc/ssh", "/etc/ssh/ssh_host_rsa_key"}, []string{"/etc/ssh/ssh_host_rsa_key/x", "/etc/ssh/moduli", "/etc/ssl"}},
		{"/exact/path.txt", []string{"/", "/exact", "/exact/path.txt"}, []string{"/exact/path.txt/x", "/exact/other", "/exac"}},
		{"/home/*/projects/**/*.go", []string{"/home", "/home/ana", "/home/ana/projects", "/home/ana/projects/a/b"}, []string{"/home/ana/docs", "/homes"}},
		{"/**/*.key", []string{"/", "/a", "/a/b/c"}, nil},
		{"/", []string{"/"}, []string{"/a"}},
		{"/a/**/b/**/c", []string{"/a", "/a/x/y", "/a/b/z"}, []string{"/b", "/ab"}},
		{"/data/[a-c]*/x", []string{"/data", "/data/alpha", "/data/alpha/x"}, []string{"/data/delta", "/data/alpha/y", "/data/alpha/x/y"}},
	}
	for _, c := range cases {
		p := MustCompile(c.pattern)
		var tr Trie
		tr.Insert(p, 1)
		for _, dir := range c.yes {
			if !p.MatchesUnder(dir) {
				t.Errorf("%q should match under %q", c.pattern, dir)
			}
			if !tr.MatchesUnder(dir) {
				t.Errorf("trie with %q should match under %q", c.pattern, dir)
			}
		}
		for _, dir := range c.no {
			if p.MatchesUnder(dir) {
				t.Errorf("%q should not match under %q", c.pattern, dir)
			}
			if tr.MatchesUnder(dir) {
				t.Errorf("trie with %q should not match under %q", c.pattern, dir)
			}
		}
	}
	var empty Trie
	if empty.MatchesUnder("/") {
		t.Error("an empty trie matches under /")
	}
}

// TestMatchesUnderNeverMissesAMatch checks MatchesUnder against Match on
// every path built from a few names: whenever a path at or below dir
// matches, MatchesUnder(dir) must say so (it may say yes more often), and
// the trie must answer as its patterns do one by one.
func TestMatchesUnderNeverMissesAMatch(t *testing.T) {
	patterns := []string{"/a/*/c/**", "/a/b", "/a/**/c", "/b/*.key", "/*/b/*", "/a/b/c/d", "/**/d"}
	names := []string{"a", "b", "c", "d", "x.key"}
	var paths []string
	var grow func(p string, depth int)
	grow = func(p string, depth int) {
		paths = append(paths, p)
		if depth == 4 {
			return
		}
		for _, n := range names {
			grow(strings.TrimSuffix(p, "/")+"/"+n, depth+1)
		}
	}
	grow("/", 0)
	var tr Trie
	for i, s := range patterns {
		tr.Insert(MustCompile(s), int32(i))
	}
	for _, s := range patterns {
		p := MustCompile(s)
		for _, dir := range paths {
			matched := false
			for _, name := range paths {
				if (name == dir || dir == "/" || strings.HasPrefix(name, dir+"/")) && p.Match(name) {
					matched = true
					break
				}
			}
			if matched && !p.MatchesUnder(dir) {
				t.Errorf("%q matches a path under %q, but MatchesUnder says no", s, dir)
			}
		}
	}
	for _, dir := range paths {
		any := false
		for _, s := range patterns {
			any = any || MustCompile(s).MatchesUnder(dir)
		}
		if got := tr.MatchesUnder(dir); got != any {
			t.Errorf("trie MatchesUnder(%q) = %v, its patterns one by one %v", dir, got, any)
		}
	}
}
