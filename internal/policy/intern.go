package policy

import (
	"slices"
	"strings"
)

// interner gives equal values decoded by one Load one copy. The Set keeps
// everything it decodes for as long as the agent runs, and a large set
// repeats rule names, executables, users, namespaces and pod selectors
// thousands of times.
type interner struct {
	strs   map[string]string
	labels map[string]map[string]string
}

func newInterner() *interner {
	return &interner{strs: map[string]string{}, labels: map[string]map[string]string{}}
}

func (in *interner) str(s string) string {
	if c, ok := in.strs[s]; ok {
		return c
	}
	in.strs[s] = s
	return s
}

// labelMap returns a map equal to m, shared with every other equal map
// given to it: maps of labels to match are only read once loaded.
func (in *interner) labelMap(m map[string]string) map[string]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		// Keys and values cannot hold a NUL: they are validated labels.
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	key := b.String()
	if c, ok := in.labels[key]; ok {
		return c
	}
	in.labels[key] = m
	return m
}
