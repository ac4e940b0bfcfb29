package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestListLengths decides with short and long lists of exclusions,
// extensions and executables: the Matcher stores short ones as slices and
// long ones as tries or maps, and both must decide alike.
func TestListLengths(t *testing.T) {
	for _, n := range []int{1, excludeTrieMin, excludeTrieMin + 1, strSetMapMin - 1, strSetMapMin, 40} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var excl, exts, exes []string
			for i := range n {
				excl = append(excl, fmt.Sprintf("%q", fmt.Sprintf("/data/pub%d/**", i)))
				exts = append(exts, fmt.Sprintf("E%d", i))
				exes = append(exes, fmt.Sprintf("/usr/bin/tool%d", i))
			}
			doc := fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: long}
spec:
  files:
    paths: ["/data/**"]
    extensions: [%s]
    excludePaths: [%s]
  rules:
    - {name: tools, operations: [open], subjects: {executables: [%s, "/opt/*/bin/tool"]}, effect: allow}
    - {name: deny, operations: [open], effect: deny}
`, strings.Join(exts, ", "), strings.Join(excl, ", "), strings.Join(exes, ", "))
			m := mustMatcher(t, doc)
			last := n - 1
			cases := []struct {
				path, exe string
				covered   bool
				verdict   Verdict
			}{
				{"/data/a/f.e0", "/bin/cat", true, Deny},
				{fmt.Sprintf("/data/a/f.E%d", last), "/bin/cat", true, Deny},
				{fmt.Sprintf("/data/a/f.e%d", n), "/bin/cat", false, Allow},
				{"/data/a/f.e0", "/usr/bin/tool0", true, Allow},
				{"/data/a/f.e0", fmt.Sprintf("/usr/bin/tool%d", last), true, Allow},
				{"/data/a/f.e0", fmt.Sprintf("/usr/bin/tool%d", n), true, Deny},
				{"/data/a/f.e0", "/opt/x/bin/tool", true, Allow},
				{"/data/pub0/f.e0", "/bin/cat", false, Allow},
				{fmt.Sprintf("/data/pub%d/d/f.e0", last), "/bin/cat", false, Allow},
				{fmt.Sprintf("/data/pub%d/f.e0", n), "/bin/cat", true, Deny},
			}
			for _, c := range cases {
				in := &Input{Op: OpOpen, Path: c.path, Subject: Subject{Exe: c.exe}}
				d := m.Decide(in)
				if d.Covered != c.covered || d.Verdict != c.verdict {
					t.Errorf("open %s by %s: covered %v, %s; want covered %v, %s", c.path, c.exe, d.Covered, d.Verdict, c.covered, c.verdict)
				}
				if ex := m.Explain(in); ex.Decision != d {
					t.Errorf("open %s by %s: Explain %+v, Decide %+v", c.path, c.exe, ex.Decision, d)
				}
			}
		})
	}
}
