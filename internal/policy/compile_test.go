package policy

import (
	"fmt"
	"slices"
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

// TestSharedLabelSelectors checks pod selectors that Load shares when
// equal: equal ones select alike, different ones (by key, value or an extra
// label) do not.
func TestSharedLabelSelectors(t *testing.T) {
	var b strings.Builder
	for i, labels := range []string{"{app: api}", "{app: web}", "{app: api, tier: db}", "{tier: api}", "{app: api}"} {
		fmt.Fprintf(&b, `---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: p%d}
spec:
  files: {paths: ["/d%d/**"]}
  rules:
    - {name: pods, operations: [open], subjects: {kubernetes: {podLabels: {matchLabels: %s}}}, effect: allow}
    - {name: deny, operations: [open], effect: deny}
`, i, i, labels)
	}
	m := mustMatcher(t, b.String())
	pods := map[string]map[string]string{
		"api":    {"app": "api"},
		"web":    {"app": "web"},
		"api-db": {"app": "api", "tier": "db"},
		"t-api":  {"tier": "api"},
	}
	// allowed[i]: the pods policy i allows.
	allowed := [][]string{{"api", "api-db"}, {"web"}, {"api-db"}, {"t-api"}, {"api", "api-db"}}
	for i, want := range allowed {
		for name, labels := range pods {
			in := &Input{Op: OpOpen, Path: fmt.Sprintf("/d%d/f", i), Subject: Subject{Exe: "/bin/cat", Pod: &Pod{Namespace: "ns", Name: name, Labels: labels}}}
			got := m.Decide(in).Verdict == Allow
			if got != slices.Contains(want, name) {
				t.Errorf("policy p%d, pod %s %v: allowed %v", i, name, labels, got)
			}
		}
	}
}
