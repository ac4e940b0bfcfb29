package cri

// clock is the eviction order of the cache: the CLOCK (second chance)
// algorithm. A hit only sets the entry's ref bit, an atomic store that
// needs no write lock, so hits from many goroutines proceed in parallel
// under the read lock. Eviction sweeps a hand over the slots, clearing ref
// bits, and takes the first entry whose bit was clear. Entries with a
// lookup in flight are never evicted, so the queue of lookups is bounded
// by the cache size. Guarded by Client.mu (write lock).
type clock struct {
	max   int
	slots []*entry
	free  []int // indexes of empty slots
	hand  int
}

// insert adds e to c.entries, evicting another entry when full. It returns
// false when every entry has a lookup in flight.
func (c *Client) insert(e *entry) bool {
	k := &c.clock
	switch {
	case len(k.free) > 0:
		e.slot = k.free[len(k.free)-1]
		k.free = k.free[:len(k.free)-1]
	case len(k.slots) < k.max:
		e.slot = len(k.slots)
		k.slots = append(k.slots, nil)
	default:
		victim := -1
		for range 2 * len(k.slots) {
			i := k.hand
			k.hand = (k.hand + 1) % len(k.slots)
			v := k.slots[i]
			if v.busy {
				continue
			}
			if v.ref.Load() {
				v.ref.Store(false)
				continue
			}
			victim = i
			break
		}
		if victim < 0 {
			return false
		}
		delete(c.entries, k.slots[victim].id)
		e.slot = victim
	}
	k.slots[e.slot] = e
	e.ref.Store(true)
	c.entries[e.id] = e
	return true
}

// remove drops e from the cache.
func (c *Client) remove(e *entry) {
	delete(c.entries, e.id)
	c.clock.slots[e.slot] = nil
	c.clock.free = append(c.clock.free, e.slot)
}
