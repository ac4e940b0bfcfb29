package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestRuleSize keeps a Rule at 64 bytes on 64-bit machines: a large set
// holds one per rule for as long as the agent runs (see the comment on
// Rule's last fields).
func TestRuleSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the size is for 64-bit machines")
	}
	if n := unsafe.Sizeof(Rule{}); n != 64 {
		t.Errorf("a Rule takes %d bytes, want 64", n)
	}
	if n := unsafe.Sizeof(crule{}); n != 32 {
		t.Errorf("a compiled rule takes %d bytes, want 32", n)
	}
}

// agentSynthPolicies writes the YAML that bench/agent-lib.sh's
// synth_policies gives bench/memory.sh: n rules in the shapes of
// synthPolicies, every path under root, the first rule of each policy
// allowing exe (variant changes the other executables).
func agentSynthPolicies(n int, root, exe, variant string) string {
	var b strings.Builder
	rules := 0
	for i := 0; rules < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: p%05d}\nspec:\n  files:\n", i)
		switch {
		case i == 0:
			fmt.Fprintf(&b, "    paths: [\"%s/**/*.kdbx\"]\n", root)
		case i%500 == 1:
			fmt.Fprintf(&b, "    extensions: [secret%d]\n", i)
		case i%10 < 6:
			fmt.Fprintf(&b, "    paths: [\"%s/srv/dept%d/**\"]\n    excludePaths: [\"%s/srv/dept%d/public/**\"]\n", root, i, root, i)
		case i%10 < 8:
			fmt.Fprintf(&b, "    paths: [\"%s/home/*/projects/proj%d/**\"]\n    extensions: [go, py]\n", root, i)
		case i%10 < 9:
			fmt.Fprintf(&b, "    paths: [\"%s/data/%d/*/reports%d/*.pdf\"]\n", root, i%50, i)
		default:
			fmt.Fprintf(&b, "    paths: [\"%s/var/lib/app%d/secrets/**\"]\n    filesystems: [ext4, xfs]\n", root, i)
		}
		b.WriteString("  rules:\n")
		for j := range min(5, n-rules) {
			switch j {
			case 0:
				fmt.Fprintf(&b, "    - {name: app, operations: [open, read], subjects: {executables: [%s, /opt/app%s%d/bin/*]}, effect: allow}\n", exe, variant, i)
			case 1:
				fmt.Fprintf(&b, "    - {name: svc, operations: [open], subjects: {users: [\"%d\"], container: none}, effect: allow}\n", 1000+i%100)
			case 2:
				b.WriteString("    - {name: pods, operations: [open], subjects: {kubernetes: {namespaces: [prod], podLabels: {matchLabels: {app: api}}}}, effect: audit}\n")
			case 3:
				b.WriteString("    - {name: no-exec, operations: [exec], effect: deny}\n")
			default:
				b.WriteString("    - {name: deny, operations: [open], effect: deny}\n")
			}
			rules++
		}
	}
	return b.String()
}

// loadMemoryKept holds the last Matcher BenchmarkLoadMemory built, so that
// a -memprofile written after the benchmark shows what it keeps.
var loadMemoryKept *Matcher

// BenchmarkLoadMemory loads and compiles the 10,000 rules bench/memory.sh
// gives the agent, as the agent does (read, Load, Compile, keep the
// Matcher), and reports the heap still reachable after a collection: in
// total and per rule, and the heap pages that hold it (inuse-MiB), which
// stay resident: objects kept scattered among garbage keep pages that are
// mostly free.
//
//	go test -run '^$' -bench LoadMemory -benchtime 1x -memprofile mem.out ./internal/policy/
//	go tool pprof -sample_index=inuse_space -top mem.out
func BenchmarkLoadMemory(b *testing.B) {
	const rules = 10000
	root := "/tmp/drm-memory.Xq3v9TzB1c/t"
	yaml := agentSynthPolicies(rules, root, "/tmp/drm-memory.Xq3v9TzB1c/bin/openloop", "a")
	var live, inuse uint64
	for b.Loop() {
		loadMemoryKept = nil
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := loadAsTheAgent(b, root+"/synth.yaml", yaml, rules)
		runtime.GC()
		runtime.ReadMemStats(&after)
		live = after.HeapAlloc - before.HeapAlloc
		inuse = after.HeapInuse - before.HeapInuse
		loadMemoryKept = m
	}
	b.ReportMetric(float64(live)/rules, "B/rule")
	b.ReportMetric(float64(live)/(1<<20), "MiB")
	b.ReportMetric(float64(inuse)/(1<<20), "inuse-MiB")
}

// loadAsTheAgent reads (copies) the source, loads and compiles it. The
// source is garbage when it returns, as in the agent; in the caller's frame
// it could stay reachable until that returns (hence noinline).
//
//go:noinline
func loadAsTheAgent(b testing.TB, name, yaml string, rules int) *Matcher {
	set, err := Load([]Source{{Name: name, Data: []byte(yaml)}}, LoadOptions{Resolver: testAccounts})
	if err != nil {
		b.Fatal(err)
	}
	if got := set.Rules(); got != rules {
		b.Fatalf("generated %d rules, want %d", got, rules)
	}
	return Compile(set, CompileOptions{})
}
