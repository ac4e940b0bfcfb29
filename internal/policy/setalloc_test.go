package policy

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestSetAllocStrings interns enough strings to fill several chunks, some
// longer than a chunk takes, and checks that every string returned is still
// what was given and that equal strings come back as one.
func TestSetAllocStrings(t *testing.T) {
	a := newSetAlloc()
	var want, got []string
	for i := range 5000 {
		s := fmt.Sprintf("/srv/dept%d/%s", i, strings.Repeat("x", i%(strChunkMax/8)))
		want = append(want, s)
		got = append(got, a.str(string([]byte(s))))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("string %d changed: %q, want %q", i, got[i], want[i])
		}
		if again := a.str(want[i]); !sameString(again, got[i]) {
			t.Fatalf("string %d interned twice", i)
		}
	}
}

// sameString reports whether a and b share their bytes.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// TestSlabLists checks that lists carved from one slab do not overlap: each
// holds what was appended to it, also past its room.
func TestSlabLists(t *testing.T) {
	var s slab[int]
	var lists [][]int
	for i := range 300 {
		n := i%7 + 1
		l := list(&s, n)
		if len(l) != 0 || cap(l) != n {
			t.Fatalf("list(%d): len %d cap %d", n, len(l), cap(l))
		}
		for j := range n + i%2 { // one past the room every other list
			l = append(l, i*100+j)
		}
		lists = append(lists, l)
	}
	for i, l := range lists {
		for j, v := range l {
			if v != i*100+j {
				t.Fatalf("list %d[%d] = %d, want %d", i, j, v, i*100+j)
			}
		}
	}
	if l := list(&s, 0); l != nil {
		t.Fatalf("list(0) = %v, want nil", l)
	}
	p, q := one(&s), one(&s)
	*p, *q = 1, 2
	if *p != 1 || *q != 2 {
		t.Fatalf("one: %d, %d", *p, *q)
	}
}
