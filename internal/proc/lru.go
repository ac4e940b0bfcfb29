package proc

// lru is a bounded map that forgets the least recently used entry. The
// list is intrusive, so get and a put that replaces do not allocate. Not
// safe for concurrent use: the Resolver's mutexes guard it.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*node[K, V]
	head  node[K, V] // sentinel: head.next is the newest, head.prev the oldest
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next *node[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	l := &lru[K, V]{max: max, items: make(map[K]*node[K, V], min(max, 1024))}
	l.head.prev, l.head.next = &l.head, &l.head
	return l
}

func (l *lru[K, V]) len() int { return len(l.items) }

func (l *lru[K, V]) unlink(n *node[K, V]) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (l *lru[K, V]) pushFront(n *node[K, V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}

// get returns the value for k and marks it most recently used.
func (l *lru[K, V]) get(k K) (V, bool) {
	n, ok := l.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.unlink(n)
	l.pushFront(n)
	return n.val, true
}

// put stores v under k, evicting the oldest entry when full.
func (l *lru[K, V]) put(k K, v V) {
	if n, ok := l.items[k]; ok {
		n.val = v
		l.unlink(n)
		l.pushFront(n)
		return
	}
	var n *node[K, V]
	if len(l.items) >= l.max {
		// Reuse the oldest node.
		n = l.head.prev
		l.unlink(n)
		delete(l.items, n.key)
	} else {
		n = &node[K, V]{}
	}
	n.key, n.val = k, v
	l.items[k] = n
	l.pushFront(n)
}

// remove forgets k.
func (l *lru[K, V]) remove(k K) {
	if n, ok := l.items[k]; ok {
		l.unlink(n)
		delete(l.items, k)
	}
}
