package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// head is a valid document prefix; every case below appends a spec.
const head = "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: bad}\n"

func TestInvalidPoliciesNameFileLineColumnAndField(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string // each an exact error line prefix "file:line:col: field: message..."
	}{
		{"unknown top-level field", head + "spec: {files: {paths: [/a]}, rules: [{name: r, operations: [open], effect: deny}]}\nstatus: {}\n",
			[]string{`p1.yaml:5:1: unknown field "status"; expected one of apiVersion, kind, metadata, spec`}},
		{"typo in a rule field", head + "spec:\n  files: {paths: [/a]}\n  rules:\n    - name: r\n      operations: [open]\n      efect: deny\n",
			[]string{`p1.yaml:9:7: spec.rules[0]: unknown field "efect"; expected one of name, operations, subjects, effect (did you mean "effect"?)`,
				`p1.yaml:7:7: spec.rules[0]: missing required field "effect"`}},
		{"unknown effect", head + "spec:\n  files: {paths: [/a]}\n  rules:\n    - {name: r, operations: [open], effect: block}\n",
			[]string{`p1.yaml:7:45: spec.rules[0].effect: unknown effect "block"; expected one of allow, deny, audit`}},
		{"unknown operation", head + "spec:\n  files: {paths: [/a]}\n  rules:\n    - {name: r, operations: [open, erase], effect: deny}\n",
			[]string{`p1.yaml:7:36: spec.rules[0].operations[1]: unknown operation "erase"; expected one of open, exec, read, write, delete, rename, link, truncate, setattr`}},
		{"misspelt operation", head + "spec:\n  files: {paths: [/a]}\n  rules:\n    - {name: r, operations: [open, wirte], effect: deny}\n",
			[]string{`p1.yaml:7:36: spec.rules[0].operations[1]: unknown operation "wirte"; expected one of open, exec, read, write, delete, rename, link, truncate, setattr (did you mean "write"?)`}},
		{"wrong type", head + "spec:\n  files: {paths: /a}\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:5:18: spec.files.paths: expected a list, got the string "/a"`}},
		{"invalid glob", head + "spec:\n  files: {paths: [\"/a/b**\", relative/x]}\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:5:19: spec.files.paths[0]: invalid glob "/a/b**": ** must be a whole path segment`,
				`p1.yaml:5:29: spec.files.paths[1]: invalid glob "relative/x": must be an absolute path`}},
		{"empty file selector", head + "spec:\n  files: {}\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:5:10: spec.files: empty file selector`}},
		{"empty subjects", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {}, effect: deny}]\n",
			[]string{`p1.yaml:6:51: spec.rules[0].subjects: empty subjects`}},
		{"empty list", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [], effect: deny}]\n",
			[]string{`p1.yaml:6:33: spec.rules[0].operations: empty list`}},
		{"missing rules", head + "spec:\n  files: {paths: [/a]}\n",
			[]string{`p1.yaml:5:3: spec: missing required field "rules"`}},
		{"wrong apiVersion", "apiVersion: drmfilter.dev/v9\nkind: ProtectionPolicy\nmetadata: {name: x}\nspec: {}\n",
			[]string{`p1.yaml:1:13: apiVersion: unsupported apiVersion "drmfilter.dev/v9"; this drmfilter reads drmfilter.dev/v1`}},
		{"wrong kind", "apiVersion: drmfilter.dev/v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n",
			[]string{`p1.yaml:2:7: kind: unsupported kind "Pod"; expected ProtectionPolicy`}},
		{"bad name", "apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: Finance_Docs}\nspec: {files: {paths: [/a]}, rules: [{name: r, operations: [open], effect: deny}]}\n",
			[]string{`p1.yaml:3:18: metadata.name: invalid name "Finance_Docs"`}},
		{"unknown user", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {users: [mallory]}, effect: deny}]\n",
			[]string{`p1.yaml:6:60: spec.rules[0].subjects.users: unknown user "mallory" on this host`}},
		{"unknown group", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {groups: [wheel]}, effect: deny}]\n",
			[]string{`p1.yaml:6:61: spec.rules[0].subjects.groups: unknown group "wheel" on this host`}},
		{"rule that can never match", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {container: none, kubernetes: {namespaces: [x]}}, effect: deny}]\n",
			[]string{`p1.yaml:6:51: spec.rules[0].subjects: this rule can never match: container: none selects host processes`}},
		{"contradictory labels", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {kubernetes: {podLabels: {matchLabels: {app: a}, matchExpressions: [{key: app, operator: DoesNotExist}]}}}, effect: deny}]\n",
			[]string{`p1.yaml:6:51: spec.rules[0].subjects: this rule can never match: label "app" is required both to exist and not to exist`}},
		{"physical with hypervisor", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {environment: {machines: [physical], hypervisors: [kvm]}}, effect: deny}]\n",
			[]string{`p1.yaml:6:51: spec.rules[0].subjects: this rule can never match: a physical machine has no hypervisor`}},
		{"shadowed rule", head + "spec:\n  files: {paths: [/a]}\n  rules:\n    - {name: a, operations: [open, exec], effect: deny}\n    - {name: b, operations: [open], effect: allow}\n",
			[]string{`p1.yaml:8:7: spec.rules[1]: rule "b" can never decide: rule "a" selects the same subjects for the same operations and takes precedence (deny beats allow)`}},
		{"duplicate rule names", head + "spec:\n  files: {paths: [/a]}\n  rules:\n    - {name: a, operations: [open], effect: deny}\n    - {name: a, operations: [exec], effect: deny}\n",
			[]string{`p1.yaml:8:7: spec.rules[1].name: duplicate rule name "a"`}},
		{"exclude everything", head + "spec:\n  files: {paths: [/a/**], excludePaths: [/a/**]}\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:5:10: spec.files.excludePaths: "/a/**" is both a path and an excluded path`}},
		{"bad hash", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open], subjects: {executableHashes: [abc]}, effect: deny}]\n",
			[]string{`p1.yaml:6:71: spec.rules[0].subjects.executableHashes[0]: invalid executable hash "abc"`}},
		{"unknown storage class", head + "spec:\n  files: {storageClasses: [clowd]}\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:5:28: spec.files.storageClasses[0]: unknown storage class "clowd"; expected one of local, network, cloud, shared-folder, removable, pseudo, overlay (did you mean "cloud"?)`}},
		{"duplicate field", head + "spec:\n  files: {paths: [/a]}\n  files: {paths: [/b]}\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:6:3: spec.files: field given twice (first at line 5)`}},
		{"YAML syntax", head + "spec:\n  files: {paths: [/a]\n  rules: []\n",
			[]string{`p1.yaml:5: YAML syntax: did not find expected ',' or '}'`}},
		{"YAML tab", head + "spec:\n\tfiles: {}\n",
			[]string{`p1.yaml:5: YAML syntax: found character that cannot start any token`}},
		{"duplicate in a short list", head + "spec:\n  files: {paths: [/a]}\n  rules: [{name: r, operations: [open, read, open], effect: deny}]\n",
			[]string{`p1.yaml:6:46: spec.rules[0].operations[2]: "open" is listed twice (first at line 6)`}},
		{"duplicates in a long list", head + "spec:\n  files:\n    paths:\n" + longPaths + "      - /p3\n      - /p21\n  rules: [{name: r, operations: [open], effect: deny}]\n",
			[]string{`p1.yaml:31:9: spec.files.paths[24]: "/p3" is listed twice (first at line 10)`,
				`p1.yaml:32:9: spec.files.paths[25]: "/p21" is listed twice (first at line 28)`}},
		{"not a mapping", "- just\n- a list\n",
			[]string{`p1.yaml:1:1: expected a mapping with fields apiVersion, kind, metadata, spec, got a list`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := loadString(t, c.doc)
			if err == nil {
				t.Fatalf("loaded an invalid policy: %+v", set)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			got := Errors(err)
			for _, want := range c.want {
				found := false
				for _, e := range got {
					if strings.HasPrefix(e.Error(), want) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing error %q\ngot:\n%v", want, err)
				}
			}
		})
	}
}

// longPaths is a list of 24 paths, /p0 to /p23, one a line from line 7
// of a document that starts with head and "spec:\n  files:\n    paths:\n".
var longPaths = func() string {
	var b strings.Builder
	for i := range 24 {
		fmt.Fprintf(&b, "      - /p%d\n", i)
	}
	return b.String()
}()

func TestDuplicatePolicyNamesAcrossFiles(t *testing.T) {
	_, err := loadString(t, financeDoc, financeDoc)
	want := `p2.yaml:4:9: metadata.name: duplicate policy name "finance-docs" (first defined at p1.yaml:4:9)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestEmptyInput(t *testing.T) {
	_, err := loadString(t, "# only a comment\n---\n")
	if err == nil || !strings.Contains(err.Error(), "no ProtectionPolicy documents found") {
		t.Fatalf("got %v", err)
	}
}
