package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the parser, validator and compiler. It
// must never panic; whatever loads must compile and decide, and whatever
// fails must say where.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(financeDoc))
	f.Add([]byte(synthPolicies(12)))
	f.Add([]byte(head + "spec:\n  files: {paths: [/a/**], extensions: [pdf], excludePaths: [/a/b]}\n  rules: [{name: r, operations: [open], subjects: {container: {ids: [0123456789ab]}, kubernetes: {podLabels: {matchExpressions: [{key: a, operator: In, values: [b]}]}}}, effect: deny}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: x}\nspec: {files: {paths: [\"/[\"]}, rules: [{name: r, operations: [open], effect: deny}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Load([]Source{{Name: "fuzz.yaml", Data: data}}, LoadOptions{Resolver: testAccounts})
		if err != nil {
			for _, e := range Errors(err) {
				if e.File != "fuzz.yaml" {
					t.Fatalf("error without its file: %v", e)
				}
			}
			return
		}
		m := Compile(set, CompileOptions{})
		for _, p := range []string{"/", "/a/b/c.pdf", "/srv/finance/x", "/usr/bin/ls"} {
			in := &Input{Op: OpOpen, Path: p, Subject: Subject{Exe: "/usr/bin/cat"}}
			in2 := *in
			if d, ex := m.Decide(in), m.Explain(&in2); d != ex.Decision {
				t.Fatalf("Decide %+v and Explain %+v disagree on %s", d, ex.Decision, p)
			}
		}
	})
}
