package agent

import (
	"fmt"
	"testing"
)

func TestIdentityIndexLearnLookupForget(t *testing.T) {
	x := newIdentityIndex(10)
	x.learn(1, 100, "/srv/secret/a.txt")
	x.learn(1, 101, "/b.txt")
	for ino, want := range map[uint64]string{100: "/srv/secret/a.txt", 101: "/b.txt"} {
		if got, ok := x.lookup(1, ino); !ok || got != want {
			t.Errorf("lookup(1, %d) = %q, %v; want %q", ino, got, ok, want)
		}
	}
	if _, ok := x.lookup(2, 100); ok {
		t.Error("an inode of another device was found")
	}
	// Renamed: the inode is known under its new name only.
	x.learn(1, 100, "/srv/secret/renamed.txt")
	if got, _ := x.lookup(1, 100); got != "/srv/secret/renamed.txt" {
		t.Errorf("after a rename: %q", got)
	}
	x.forgetPath("/srv/secret/a.txt") // the old name: nothing to forget
	if _, ok := x.lookup(1, 100); !ok {
		t.Error("forgetting the old name forgot the renamed file")
	}
	// Another file now has the name: the old inode is not that path any more.
	x.learn(1, 102, "/srv/secret/renamed.txt")
	if _, ok := x.lookup(1, 100); ok {
		t.Error("the replaced inode is still indexed under the name")
	}
	x.forgetPath("/srv/secret/renamed.txt")
	if _, ok := x.lookup(1, 102); ok || x.len() != 1 {
		t.Errorf("after forget: known %v, %d entries (want only /b.txt)", ok, x.len())
	}
	// The limit: new files are not learned, known ones still move.
	for i := range 20 {
		x.learn(3, uint64(i), fmt.Sprintf("/d/f%d", i))
	}
	if x.len() != 10 {
		t.Errorf("%d entries, want the limit 10", x.len())
	}
	x.learn(1, 101, "/c.txt")
	if got, _ := x.lookup(1, 101); got != "/c.txt" {
		t.Errorf("a known file at the limit did not move: %q", got)
	}
}

// Two paths whose hashes collide are both kept, and each is forgotten by
// its own name.
func TestIdentityIndexHashCollision(t *testing.T) {
	x := newIdentityIndex(100)
	x.learn(1, 1, "/a/one")
	tb := x.t
	// Make /a/two collide with /a/one: point its hash at inode 1.
	id := tb.dirIDs["/a"]
	tb.byPath[tb.hash(id, "two")] = fileKey{1, 1}
	x.learn(1, 2, "/a/two")
	for ino, want := range map[uint64]string{1: "/a/one", 2: "/a/two"} {
		if got, ok := x.lookup(1, ino); !ok || got != want {
			t.Errorf("lookup(1, %d) = %q, %v; want %q", ino, got, ok, want)
		}
	}
	x.forgetPath("/a/two")
	if _, ok := x.lookup(1, 2); ok {
		t.Error("/a/two not forgotten")
	}
	if _, ok := x.lookup(1, 1); !ok {
		t.Error("forgetting /a/two forgot /a/one")
	}
}

// Renames churn the names arena; it is compacted, and names stay right.
func TestIdentityIndexCompactsNames(t *testing.T) {
	x := newIdentityIndex(1 << 20)
	for i := range 100 {
		x.learn(1, uint64(i), fmt.Sprintf("/d/file-%03d", i))
	}
	for round := range 200 {
		for i := range 100 {
			x.learn(1, uint64(i), fmt.Sprintf("/d/file-%03d-renamed-%04d-with-a-long-name", i, round))
		}
	}
	if n := len(x.t.names); n > 1<<18 {
		t.Errorf("names arena of %d bytes after churn: not compacted", n)
	}
	if got, _ := x.lookup(1, 42); got != "/d/file-042-renamed-0199-with-a-long-name" {
		t.Errorf("after compaction: %q", got)
	}
}

func TestSplitPath(t *testing.T) {
	for p, want := range map[string][2]string{"/a/b": {"/a", "b"}, "/b": {"/", "b"}, "/a/b/c": {"/a/b", "c"}} {
		if d, b := splitPath(p); d != want[0] || b != want[1] {
			t.Errorf("splitPath(%q) = %q, %q", p, d, b)
		}
	}
}
