package glob

import (
	"errors"
	"slices"
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
	})
}
