package policy

import (
	"maps"
	"sync"
	"sync/atomic"
)

// hostExeCacheMax bounds the paths a hostExeCache remembers. Literal
// executables are few; a glob may match many host files, and a full cache
// starts again empty rather than growing.
const hostExeCacheMax = 1024

// hostExeCache remembers the file installed on the host at each executable
// path a rule matched. A read is one atomic load and a map lookup, without
// a lock or an allocation; a change copies the map, which happens once per
// path and host file, not per decision (errors are not remembered).
//
// An entry decides alone only when the process's executable is that very
// file, unchanged since it was found (same Ctime): the file cannot have
// left the path since, as a rename of it or over it, or its unlinking,
// would have moved its Ctime. Otherwise the host is asked again and the
// entry replaced: after a package upgrade the new file matches, and a
// process still running the old one (now nameless, ExeDeleted) does not.
// What an entry cannot see is the replacement of a parent directory
// (renaming /usr/bin itself away): a process running the old file then
// prints the directory's new name, unless another mount namespace puts
// that directory back at the old path.
type hostExeCache struct {
	ids atomic.Pointer[map[string]FileID]
	mu  sync.Mutex // serialises writers
}

func newHostExeCache() *hostExeCache {
	c := &hostExeCache{}
	m := map[string]FileID{}
	c.ids.Store(&m)
	return c
}

// isHosts reports whether s's executable is the file at s.Exe on the host.
func (c *hostExeCache) isHosts(s *Subject) bool {
	if s.ExeDeleted || s.ExeID.Ino == 0 || s.Exe == "" || s.Exe[0] != '/' {
		// A file with no name left is installed nowhere; an unknown
		// identity proves nothing.
		return false
	}
	if c != nil {
		if id, ok := (*c.ids.Load())[s.Exe]; ok && id == s.ExeID {
			return true
		}
	}
	id, err := s.Host.Identify(s.Exe)
	if c != nil {
		if err != nil {
			c.forget(s.Exe)
		} else {
			c.store(s.Exe, id)
		}
	}
	return err == nil && id.same(s.ExeID)
}

func (c *hostExeCache) store(path string, id FileID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.ids.Load()
	if cur, ok := old[path]; ok && cur == id {
		return
	}
	var m map[string]FileID
	if len(old) >= hostExeCacheMax {
		m = map[string]FileID{}
	} else {
		m = maps.Clone(old)
	}
	m[path] = id
	c.ids.Store(&m)
}

func (c *hostExeCache) forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.ids.Load()
	if _, ok := old[path]; !ok {
		return
	}
	m := maps.Clone(old)
	delete(m, path)
	c.ids.Store(&m)
}

// len is the number of paths remembered, for tests.
func (c *hostExeCache) len() int { return len(*c.ids.Load()) }
