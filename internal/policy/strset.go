package policy

// strSet is an immutable set of strings. Policies list few executables or
// extensions, and a map costs some 300 bytes even for one entry, so a small
// set is a slice searched in order; a large one is a map.
type strSet struct {
	list []string
	m    map[string]struct{}
}

// strSetMapMin is the size from which a strSet is a map.
const strSetMapMin = 16

func newStrSet(ss []string) strSet {
	if len(ss) < strSetMapMin {
		return strSet{list: ss[:len(ss):len(ss)]}
	}
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return strSet{m: m}
}

func (s *strSet) empty() bool { return len(s.list) == 0 && len(s.m) == 0 }

func (s *strSet) has(x string) bool {
	if s.m != nil {
		_, ok := s.m[x]
		return ok
	}
	for _, e := range s.list {
		if e == x {
			return true
		}
	}
	return false
}

// hasBytes is has for a name in a buffer; it does not allocate.
func (s *strSet) hasBytes(x []byte) bool {
	if s.m != nil {
		_, ok := s.m[string(x)]
		return ok
	}
	for _, e := range s.list {
		if e == string(x) {
			return true
		}
	}
	return false
}
