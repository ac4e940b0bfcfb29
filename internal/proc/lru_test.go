package proc

import "testing"

func TestLRU(t *testing.T) {
	l := newLRU[int, string](3)
	l.put(1, "a")
	l.put(2, "b")
	l.put(3, "c")
	if _, ok := l.get(1); !ok { // 1 is now the newest
		t.Fatal("1 missing")
	}
	l.put(4, "d") // evicts 2, the least recently used
	if _, ok := l.get(2); ok {
		t.Error("2 should have been evicted")
	}
	for _, k := range []int{1, 3, 4} {
		if _, ok := l.get(k); !ok {
			t.Errorf("%d missing", k)
		}
	}
	l.put(3, "C") // replace
	if v, _ := l.get(3); v != "C" || l.len() != 3 {
		t.Errorf("replace: %q, len %d", v, l.len())
	}
	l.remove(3)
	l.remove(99)
	if _, ok := l.get(3); ok || l.len() != 2 {
		t.Error("remove")
	}
	for i := range 100 {
		l.put(i, "x")
	}
	if l.len() != 3 {
		t.Errorf("len %d, bound 3", l.len())
	}
	// The list and the map agree.
	n := 0
	for p := l.head.next; p != &l.head; p = p.next {
		if l.items[p.key] != p {
			t.Fatal("list and map disagree")
		}
		n++
	}
	if n != 3 {
		t.Errorf("list has %d nodes", n)
	}
	if a := testing.AllocsPerRun(100, func() { l.get(99); l.put(98, "y") }); a != 0 {
		t.Errorf("get/put of known keys allocates %v", a)
	}
}
