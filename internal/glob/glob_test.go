package glob

import (
	"errors"
	"path"
	"slices"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"/srv/finance/**", []string{"/srv/finance", "/srv/finance/q3.xlsx", "/srv/finance/a/b/c.pdf"}, []string{"/srv", "/srv/financex/a", "/srv/fin/a", "/var/srv/finance/a"}},
		{"/srv/finance/*", []string{"/srv/finance/q3.xlsx", "/srv/finance/.hidden"}, []string{"/srv/finance", "/srv/finance/a/b"}},
		{"/home/*/projects/**/*.go", []string{"/home/ana/projects/x.go", "/home/ana/projects/a/b/x.go"}, []string{"/home/ana/projects/x.gox", "/home/ana/b/projects/x.go", "/home/projects/x.go"}},
		{"/etc/ssh/ssh_host_*_key", []string{"/etc/ssh/ssh_host_rsa_key"}, []string{"/etc/ssh/ssh_host_rsa_key.pub"}},
		{"/data/file?.txt", []string{"/data/file1.txt"}, []string{"/data/file10.txt", "/data/file.txt"}},
		{"/data/[a-c]*.csv", []string{"/data/alpha.csv", "/data/c.csv"}, []string{"/data/delta.csv"}},
		{"/**/*.key", []string{"/a.key", "/x/y/z.key"}, []string{"/x/y/z.keys"}},
		{"/**", []string{"/", "/a", "/a/b"}, nil},
		{"/", []string{"/"}, []string{"/a"}},
		{"/a/**/b/**/c", []string{"/a/b/c", "/a/x/b/y/z/c"}, []string{"/a/b", "/a/c/b"}},
		{"/exact/path.txt", []string{"/exact/path.txt"}, []string{"/exact/path.txt2", "/exact", "exact/path.txt", ""}},
		{"/dir/", []string{"/dir"}, []string{"/dir/a"}},
		{"/srv/fin", []string{"/srv/fin"}, []string{"/srv/finance", "/srv/fi", "/srv", "/srv/fin/a", "/srvx/fin"}},
		{"/srv/fin/*/x/**", []string{"/srv/fin/a/x", "/srv/fin/a/x/y/z"}, []string{"/srv/finx/a/x", "/srv/fin/x", "/srv/fin/a/xy", "/srv/fi/a/x"}},
	}
	for _, c := range cases {
		p, err := Compile(c.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.pattern, err)
		}
		var tr Trie
		tr.Insert(p, 7)
		for _, name := range c.yes {
			if !p.Match(name) {
				t.Errorf("%q should match %q", c.pattern, name)
			}
			if got := tr.Match(nil, name); !slices.Contains(got, 7) {
				t.Errorf("trie with %q should match %q", c.pattern, name)
			}
		}
		for _, name := range c.no {
			if p.Match(name) {
				t.Errorf("%q should not match %q", c.pattern, name)
			}
			if got := tr.Match(nil, name); len(got) != 0 {
				t.Errorf("trie with %q should not match %q, got %v", c.pattern, name, got)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, bad := range []string{"", "relative/path", "/a//b", "/a/../b", "/a/./b", "/a/b**", "/a/**x/c", "/a/[b", "/a/b\\", "/a/[]"} {
		_, err := Compile(bad)
		if err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", bad)
			continue
		}
		if !errors.Is(err, ErrBadPattern) {
			t.Errorf("Compile(%q) error %v does not match ErrBadPattern", bad, err)
		}
	}
}

func TestSpecificity(t *testing.T) {
	for pattern, want := range map[string]int{"/**": 0, "/srv/finance/**": 2, "/srv/*/q3.xlsx": 2, "/a/b/c": 3} {
		if got := MustCompile(pattern).Specificity(); got != want {
			t.Errorf("Specificity(%q) = %d, want %d", pattern, got, want)
		}
	}
}

func TestIsLiteral(t *testing.T) {
	for pattern, want := range map[string]bool{"/": true, "/a/b/c": true, "/dir/": true, "/a/*/c": false, "/a/b/**": false, "/a/b?": false} {
		if got := MustCompile(pattern).IsLiteral(); got != want {
			t.Errorf("IsLiteral(%q) = %v, want %v", pattern, got, want)
		}
	}
}

// refMatch is a plain matcher to check Pattern and Trie against: segment by
// segment with path.Match, ** by trying every split.
func refMatch(pattern, name string) bool {
	split := func(s string) []string {
		s = strings.Trim(s, "/")
		if s == "" {
			return nil
		}
		return strings.Split(s, "/")
	}
	if name == "" || name[0] != '/' {
		return false
	}
	var match func(ps, ns []string) bool
	match = func(ps, ns []string) bool {
		if len(ps) == 0 {
			return len(ns) == 0
		}
		if ps[0] == "**" {
			for i := 0; i <= len(ns); i++ {
				if match(ps[1:], ns[i:]) {
					return true
				}
			}
			return false
		}
		if len(ns) == 0 {
			return false
		}
		ok, _ := path.Match(ps[0], ns[0])
		return ok && match(ps[1:], ns[1:])
	}
	return match(split(pattern), split(name))
}

func TestMatchAgreesWithReference(t *testing.T) {
	patterns := []string{"/", "/**", "/a", "/a/b", "/a/**", "/a/b/**", "/a/*", "/a/*/c", "/a/**/c", "/**/c", "/a/b*", "/a/b/c/**/d/*.x", "/ab/[a-c]?/**"}
	names := []string{"/", "/a", "/ab", "/a/b", "/a/bc", "/a/b/c", "/a/x/c", "/a/b/c/d/e.x", "/a/b/c/q/d/e.x", "/ab/b1/z", "/ab/d1", "/c", "/x/y/c"}
	for _, pat := range patterns {
		p := MustCompile(pat)
		var tr Trie
		tr.Insert(p, 1)
		for _, name := range names {
			want := refMatch(pat, name)
			if got := p.Match(name); got != want {
				t.Errorf("%q.Match(%q) = %v, want %v", pat, name, got, want)
			}
			if got := len(tr.Match(nil, name)) > 0; got != want {
				t.Errorf("trie with %q on %q: %v, want %v", pat, name, got, want)
			}
		}
	}
}

func TestTrieManyPatterns(t *testing.T) {
	var tr Trie
	patterns := []string{"/srv/finance/**", "/srv/*/reports/*.pdf", "/srv/hr/**", "/**/*.pem", "/srv/finance/q3.xlsx"}
	for i, p := range patterns {
		tr.Insert(MustCompile(p), int32(i))
	}
	cases := map[string][]int32{
		"/srv/finance/q3.xlsx":           {0, 4},
		"/srv/finance/reports/a.pdf":     {0, 1},
		"/srv/hr/reports/a.pdf":          {1, 2},
		"/srv/hr/keys/x.pem":             {2, 3},
		"/usr/lib/x86_64-linux-gnu/a.so": nil,
		"/etc/ssl/private/host.pem":      {3},
	}
	for name, want := range cases {
		got := tr.Match(nil, name)
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTrieMatchDoesNotAllocate(t *testing.T) {
	var tr Trie
	for i, p := range []string{"/srv/finance/**", "/srv/*/reports/*.pdf", "/**/*.pem"} {
		tr.Insert(MustCompile(p), int32(i))
	}
	buf := make([]int32, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		buf = tr.Match(buf[:0], "/usr/share/doc/bash/README")
		buf = tr.Match(buf[:0], "/srv/finance/a/b.xlsx")
	})
	if allocs != 0 {
		t.Fatalf("Match allocated %v times per run", allocs)
	}
}

func FuzzCompileMatch(f *testing.F) {
	for _, s := range []string{"/srv/finance/**", "/a/*/b?", "/**/*.go", "/[a-z]/x", "/a\\*b"} {
		f.Add(s, "/srv/finance/x/y.go")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		p, err := Compile(pattern)
		if err != nil {
			return
		}
		var tr Trie
		tr.Insert(p, 1)
		got := len(tr.Match(nil, name)) > 0
		if got != p.Match(name) {
			t.Fatalf("trie and Pattern.Match disagree for %q on %q: trie %v", pattern, name, got)
		}
		// The reference splits clean paths only, and path.Match treats
		// escapes and classes differently from a whole-path view.
		if !strings.ContainsAny(pattern, `\[`) && path.Clean(name) == name {
			if want := refMatch(pattern, name); got != want {
				t.Fatalf("%q on %q: %v, reference %v", pattern, name, got, want)
			}
		}
	})
}
